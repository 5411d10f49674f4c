package capture

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/internal/testpkt"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTextWriterPrintsInOrder: many batches, printed in the order written,
// each line the printer's; a lone packet is printed without waiting for
// Close (the flush timer hands on a partial batch).
func TestTextWriterPrintsInOrder(t *testing.T) {
	corpus := testpkt.Corpus()
	var out lockedBuf
	tw := NewTextWriter(&out, TextOptions{Time: 2}, false)
	tw.Write(&Packet{TimeNs: 1e9, Length: len(corpus[0].Frame), Data: corpus[0].Frame})
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatal("a lone packet was not printed within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	const n = 3000
	var want strings.Builder
	pr := NewPrinter(TextOptions{Time: 2})
	want.Write(pr.Append(nil, 1e9, len(corpus[0].Frame), corpus[0].Frame))
	for i := range n {
		f := corpus[i%len(corpus)].Frame
		ts := int64(2e9 + i*1000)
		if err := tw.Write(&Packet{TimeNs: ts, Length: len(f), Data: f}); err != nil {
			t.Fatal(err)
		}
		want.Write(pr.Append(nil, ts, len(f), f))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Fatalf("printed %d bytes, want %d (the printer's text in order)", out.b.Len(), want.Len())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBrokenPipe }

var errBrokenPipe = &brokenPipe{}

type brokenPipe struct{}

func (*brokenPipe) Error() string { return "broken pipe" }

// TestTextWriterReportsWriteErrors: once stdout fails, Write says so (the
// capture ends) instead of formatting for nobody.
func TestTextWriterReportsWriteErrors(t *testing.T) {
	f := testpkt.Corpus()[0].Frame
	tw := NewTextWriter(failWriter{}, TextOptions{}, true)
	var err error
	deadline := time.Now().Add(2 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = tw.Write(&Packet{Length: len(f), Data: f})
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("Write never reported the failed write")
	}
	if cerr := tw.Close(); cerr == nil {
		t.Fatal("Close did not report the failed write")
	}
}
