package output

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// writeLog records every Write the Writer makes, with its time.
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
	at     []time.Time
	notify chan struct{}
}

func newWriteLog() *writeLog { return &writeLog{notify: make(chan struct{}, 1024)} }

func (l *writeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writes = append(l.writes, bytes.Clone(p))
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
	l.notify <- struct{}{}
	return len(p), nil
}

func (l *writeLog) all() ([][]byte, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.writes...), append([]time.Time(nil), l.at...)
}

func TestResultWriterFlushesWithinTheDelay(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, format := range Formats {
		if Grouped(format) {
			continue // hosts are written whole, at Close: TestGroupedFormatsWriteHostsWhole
		}
		t.Run(format, func(t *testing.T) {
			log := newWriteLog()
			w, err := NewWriter(log, format)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// Three results spread over more than FlushDelay: the first
			// flush comes FlushDelay after the first result, whatever
			// arrives later, then the rest follow within the bound too.
			stop := make(chan struct{})
			late := watchLateness(stop)
			written := []time.Time{}
			for i := range 3 {
				written = append(written, time.Now())
				if err := w.Write(testResult); err != nil {
					t.Fatal(err)
				}
				if i < 2 {
					time.Sleep(FlushDelay * 7 / 10)
				}
			}
			deadline := time.After(5 * FlushDelay)
			for lines := 0; lines < 3; {
				select {
				case <-log.notify:
				case <-deadline:
					t.Fatalf("after %v only %d of 3 results were written", 5*FlushDelay, lines)
				}
				writes, _ := log.all()
				lines = 0
				for _, b := range writes {
					lines += strings.Count(string(b), string(firstRecordLine(t, format)))
				}
			}
			close(stop)
			// The bound, plus 100 ms, plus how late this (shared, loaded)
			// machine woke sleeping goroutines meanwhile.
			bound := FlushDelay + 100*time.Millisecond + <-late
			writes, at := log.all()
			// Which write carried result i: count records write by write.
			seen := 0
			for k, b := range writes {
				n := strings.Count(string(b), string(firstRecordLine(t, format)))
				for ; n > 0; n-- {
					if lag := at[k].Sub(written[seen]); lag > bound {
						t.Errorf("result %d written %v after it arrived (bound %v with scheduling slack)", seen, lag, bound)
					}
					seen++
				}
				if len(b) == 0 || b[len(b)-1] != '\n' {
					t.Errorf("write %d does not end on a record boundary: %q", k, b)
				}
			}
		})
	}
}

// watchLateness sends, once stop is closed, the most a 2 ms sleep overran
// until then.
func watchLateness(stop <-chan struct{}) <-chan time.Duration {
	res := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		for {
			start := time.Now()
			select {
			case <-stop:
				res <- worst
				return
			case <-time.After(2 * time.Millisecond):
			}
			worst = max(worst, time.Since(start)-2*time.Millisecond)
		}
	}()
	return res
}

// firstRecordLine is testResult's line in format, taken from a closed writer.
func firstRecordLine(t *testing.T, format string) []byte {
	t.Helper()
	var b, empty bytes.Buffer
	w, _ := NewWriter(&b, format)
	w.Write(testResult)
	w.Close()
	e, _ := NewWriter(&empty, format)
	e.Close()
	// The record is what the one-result output has beyond the empty one's
	// header: the first line that differs.
	got, base := strings.Split(b.String(), "\n"), strings.Split(empty.String(), "\n")
	for i := range got {
		if i >= len(base) || got[i] != base[i] {
			return []byte(got[i] + "\n")
		}
	}
	t.Fatalf("%s: no record line in %q", format, b.String())
	return nil
}

func TestResultWriterWritesWholeRecordsWhenFull(t *testing.T) {
	log := newWriteLog()
	w, _ := NewWriter(log, "ndjson")
	const n = 2000 // about 260 KB: several buffer-full flushes before any timer
	for range n {
		w.Write(testResult)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writes, _ := log.all()
	if len(writes) < 3 {
		t.Fatalf("%d writes for %d results: want several buffer-full flushes", len(writes), n)
	}
	var all []byte
	for k, b := range writes {
		if len(b) > pendingCap {
			t.Errorf("write %d is %d bytes, over the %d-byte buffer", k, len(b), pendingCap)
		}
		if b[len(b)-1] != '\n' {
			t.Errorf("write %d ends mid-record: ...%q", k, b[max(0, len(b)-40):])
		}
		all = append(all, b...)
	}
	if lines := bytes.Count(all, []byte("\n")); lines != n {
		t.Errorf("%d lines written, want %d", lines, n)
	}
}

// parseXML parses b as the XML document the writer makes and returns how
// many ports its hosts have.
func parseXML(b []byte) (int, error) {
	var run struct {
		Ports []struct{} `xml:"host>ports>port"`
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&run); err != nil {
		return 0, err
	}
	// Decode stops at the root's end: anything after it but space is an error.
	if rest := b[d.InputOffset():]; len(bytes.TrimSpace(rest)) > 0 {
		return 0, &xml.SyntaxError{Msg: "data after the root element: " + string(rest)}
	}
	return len(run.Ports), nil
}

func TestXMLFileIsValidAtEveryFlush(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		flag       int
		validEarly bool // a complete document after every flush, not only after Close
		// The hosts are written at Close (whole, whatever the reply order):
		// until then the document has none, and says the scan did not finish.
	}{
		{"new file", os.O_WRONLY | os.O_CREATE | os.O_TRUNC, true},
		{"read-write", os.O_RDWR | os.O_CREATE | os.O_TRUNC, true},
		// O_APPEND puts every write at the end: the trailer cannot be sought
		// back over, so it is written once, by Close.
		{"O_APPEND", os.O_WRONLY | os.O_CREATE | os.O_APPEND, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".xml")
			f, err := os.OpenFile(path, tc.flag, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, err := NewWriter(f, "xml")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 5; i++ {
				// Records of different lengths: a later flush shorter than
				// an earlier one must not leave an old trailer's tail.
				r := testResult
				r.Port = uint16(i * 1111 % 9999)
				for range i % 3 {
					w.Write(r)
				}
				w.Write(r)
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(path)
				hosts, err := parseXML(b)
				switch {
				case tc.validEarly && err != nil:
					t.Fatalf("after flush %d the file is not valid XML: %v\n%s", i, err, b)
				case !tc.validEarly && bytes.Contains(b, []byte("</nmaprun>")):
					t.Fatalf("O_APPEND: trailer written before Close:\n%s", b)
				case tc.validEarly && (hosts != 0 || !bytes.Contains(b, []byte(`exit="error"`))):
					t.Fatalf("after flush %d: %d ports before Close, or no exit=\"error\":\n%s", i, hosts, b)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if ports, err := parseXML(b); err != nil || ports != 5 {
				t.Fatalf("after Close: %d ports (want 5: one per port, whatever the repeats), %v\n%s", ports, err, b)
			}
			if n := bytes.Count(b, []byte("</nmaprun>")); n != 1 || !bytes.Contains(b, []byte("<runstats><finished")) {
				t.Fatalf("after Close: %d trailers, runstats present %v:\n%s", n, bytes.Contains(b, []byte("<runstats>")), b)
			}
		})
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, os.ErrClosed
}

func TestResultWriterKeepsTheFirstError(t *testing.T) {
	fw := &failWriter{}
	w, _ := NewWriter(fw, "ndjson")
	w.Write(testResult)
	if err := w.Flush(); err == nil {
		t.Fatal("Flush to a failing writer returned nil")
	}
	if err := w.Write(testResult); err == nil {
		t.Fatal("Write after a failed flush returned nil")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed flush returned nil")
	}
	if fw.n != 1 {
		t.Fatalf("%d writes attempted after the first failure, want none", fw.n-1)
	}
	if err := w.Write(testResult); err == nil {
		t.Fatal("Write after Close returned nil")
	}
}

func TestResultWriteAllocatesNothing(t *testing.T) {
	for _, format := range Formats {
		w, _ := NewWriter(io.Discard, format)
		if n := testing.AllocsPerRun(10000, func() { w.Write(testResult) }); n != 0 {
			t.Errorf("%s: %v allocations per result, want 0", format, n)
		}
		w.Close()
	}
}
