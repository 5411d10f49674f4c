package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// portTruth is the exact set of open and closed pairs in prefix × ports.
func portTruth(cfg testbed.Config, prefix string, ports ...uint16) (open, closed map[pair]bool) {
	open, closed = map[pair]bool{}, map[pair]bool{}
	p := netip.MustParsePrefix(prefix)
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		for _, port := range ports {
			switch cfg.State(a, port) {
			case testbed.Open:
				open[pair{a, port}] = true
			case testbed.Closed:
				closed[pair{a, port}] = true
			}
		}
	}
	return open, closed
}

// humanResult is a result line of --format human from a TCP scan of the testbed.
var humanResult = regexp.MustCompile(`^(open|closed) +tcp (198\.18\.\d+\.\d+):(\d+) ttl=64$`)

// checkHumanLines checks lines hold every pair of the truth exactly once,
// each as one whole human result line, and nothing else but messages
// starting with "xdpscan: " and empty lines.
func checkHumanLines(t *testing.T, lines []string, open, closed map[pair]bool) {
	t.Helper()
	seen := map[pair]bool{}
	bad := 0
	for _, l := range lines {
		m := humanResult.FindStringSubmatch(l)
		switch {
		case m != nil:
			port, _ := strconv.Atoi(m[3])
			p := pair{netip.MustParseAddr(m[2]), uint16(port)}
			if seen[p] {
				t.Errorf("result printed twice: %q", l)
			}
			seen[p] = true
			if want := map[bool]string{true: "open", false: "closed"}[open[p]]; !open[p] && !closed[p] || m[1] != want {
				t.Errorf("result %q: the truth is %s", l, map[bool]string{true: "open", false: "closed or filtered"}[open[p]])
			}
		case l == "" || strings.HasPrefix(l, "xdpscan: "):
		default:
			if bad++; bad <= 10 {
				what := "not a whole result line"
				if strings.Contains(l, "ETA") {
					what = "a status line's remnant"
				}
				t.Errorf("%s: %q", what, l)
			}
		}
	}
	if len(seen) != len(open)+len(closed) {
		t.Errorf("%d whole result lines, want %d (%d open + %d closed); %d other lines",
			len(seen), len(open)+len(closed), len(open), len(closed), bad)
	}
}

// screen replays raw terminal output on a terminal cols wide the way a
// VT100-style terminal (xterm, tmux) lays it out: printable characters
// overwrite at the cursor and wrap at the right margin, \r returns to the
// first column of the cursor's row, \n starts a new row, ESC [ K erases to
// the end of the row. It returns the logical lines that scrolled by (rows
// joined back where they wrapped), the one the cursor is left on, and any
// control sequence it does not know.
func screen(raw []byte, cols int) (lines []string, last string, unknown []string) {
	var line []byte       // the logical line, over one or more rows
	rowStart, col := 0, 0 // the cursor's row starts at line[rowStart]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r':
			col = 0
		case c == '\n':
			lines = append(lines, strings.TrimRight(string(line), " "))
			line, rowStart, col = line[:0:0], 0, 0
		case c == 0x1b && i+2 < len(raw) && raw[i+1] == '[' && raw[i+2] == 'K':
			if rowStart+col < len(line) {
				line = line[:rowStart+col]
			}
			i += 2
		case c >= 0x20 && c < 0x7f:
			if col == cols { // deferred autowrap: the next character starts a row
				rowStart, col = rowStart+cols, 0
			}
			pos := rowStart + col
			for len(line) < pos {
				line = append(line, ' ')
			}
			if pos < len(line) {
				line[pos] = c
			} else {
				line = append(line, c)
			}
			col++
		default:
			unknown = append(unknown, fmt.Sprintf("%q at byte %d", raw[i:min(len(raw), i+8)], i))
		}
	}
	return lines, strings.TrimRight(string(line), " "), unknown
}

func TestScreenReplay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		raw       string
		wantLines []string
		wantLast  string
	}{
		{"plain lines", "a\r\nb\r\n", []string{"a", "b"}, ""},
		{"\\r overwrites the row", "status 1\rab\r\n", []string{"abatus 1"}, ""},
		{"erase to the end of the row", "status\r\x1b[Kab\r\n", []string{"ab"}, ""},
		{"a long line wraps and stays one line", "0123456789abc\r\n", []string{"0123456789abc"}, ""},
		// The bug this guards against: \r on a wrapped status line returns
		// to its second row only, and its first row is left in the line.
		{"\\r after a wrap keeps the first row", "0123456789abc\r\x1b[Kopen\r\n", []string{"0123456789open"}, ""},
		{"a row exactly as wide as the terminal does not wrap yet", "0123456789\r\x1b[Kx", nil, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, last, unknown := screen([]byte(tc.raw), 10)
			if strings.Join(lines, "|") != strings.Join(tc.wantLines, "|") || last != tc.wantLast || unknown != nil {
				t.Errorf("got %q, last %q, unknown %q; want %q, last %q", lines, last, unknown, tc.wantLines, tc.wantLast)
			}
		})
	}
}

// humanScan is the command of a scan of prefix × {22, 9000} at rate
// (packets a second) with extra flags, bounded to a minute, and the truth
// its results must match.
func humanScan(t *testing.T, tb *testbed.Testbed, prefix, rate string, extra ...string) (cmd *exec.Cmd, open, closed map[pair]bool) {
	t.Helper()
	open, closed = portTruth(tb.Config, prefix, 22, 9000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tb.ScanNS(), binary, "scan", prefix, "-p", "22,9000",
		"--allow", "198.18.0.0/15", "--rate", rate, "--wait", "1500ms"}, extra...)...)
	return cmd, open, closed
}

func TestTerminalOutput(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})

	// A scan with human output and the status line on a terminal 80
	// columns wide (the status line is longer than that): every result
	// must be a whole line on the screen and no status line left behind.
	t.Run("pty", func(t *testing.T) {
		// --status is left at auto: a terminal must turn it on.
		cmd, open, closed := humanScan(t, tb, "198.18.0.0/20", "3000")
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
		if err != nil {
			t.Fatalf("start on a pty: %v", err)
		}
		defer ptmx.Close()
		raw, rerr := io.ReadAll(ptmx) // ends with EIO once the scan has exited
		werr := cmd.Wait()
		if rerr != nil && !errors.Is(rerr, syscall.EIO) {
			t.Fatalf("read the pty: %v", rerr)
		}
		if werr != nil {
			t.Fatalf("scan: %v\n%s", werr, raw)
		}
		if n := bytes.Count(raw, []byte(" ETA ")); n < 2 {
			t.Fatalf("the status line was drawn %d times: want it on (--status auto on a terminal)", n)
		}
		lines, last, unknown := screen(raw, 80)
		if unknown != nil {
			t.Errorf("unexpected control sequences: %q", unknown[:min(5, len(unknown))])
		}
		if last != "" {
			t.Errorf("left on the last row: %q, want the status line erased", last)
		}
		checkHumanLines(t, lines, open, closed)
	})

	// The same with stdout and stderr pipes and the text status forced on:
	// plain lines, no \r nor any escape sequence.
	t.Run("piped", func(t *testing.T) {
		cmd, open, closed := humanScan(t, tb, "198.18.16.0/21", "2000", "--status", "text", "--format", "human")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("scan: %v\n%s", err, stderr.String())
		}
		for name, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes()} {
			if i := bytes.IndexAny(b, "\r\x1b"); i >= 0 {
				t.Errorf("%s has a control character at byte %d: %q", name, i, b[max(0, i-40):min(len(b), i+40)])
			}
		}
		if !strings.Contains(stderr.String(), "ETA") {
			t.Errorf("no status line on stderr with --status text:\n%s", stderr.String())
		}
		checkHumanLines(t, strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"), open, closed)
	})

	// At --rate 50 each result must be readable, on a pipe and in a file,
	// within FlushDelay of its arrival (the reply's receive time, ts).
	for _, where := range []string{"stdout pipe", "file"} {
		t.Run("rate 50 "+where, func(t *testing.T) {
			checkResultsArriveInTime(t, tb, where)
		})
	}

	// SIGINT, SIGTERM and SIGHUP end the scan alike: after its cooldown
	// the XML file holds every result the scan counted (one <port> each,
	// in one <host> per address), and the real trailer.
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			out, stats := filepath.Join(dir, "term.xml"), filepath.Join(dir, "stats.json")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// env --default-signal: a test run under nohup passes SIGHUP
			// on ignored, and the scan keeps ignoring it, as it should.
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", tb.ScanNS(), "env", "--default-signal=HUP", binary, "scan", "198.18.48.0/20", "-p", scanPortsFlag,
				"--allow", "198.18.0.0/15", "--rate", "5000", "--wait", "500ms", "--status", "none", "--format", "xml", "-o", out, "--stats-json", stats)
			cmd.Dir = dir // the resume file lands here
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("after %v: %v, want exit status 130\n%s", sig, err, stderr.String())
			}
			if lint, err := exec.Command("xmllint", "--noout", out).CombinedOutput(); err != nil {
				t.Fatalf("xmllint: %v\n%s", err, lint)
			}
			b, _ := os.ReadFile(out)
			var st scan.Stats
			if sb, err := os.ReadFile(stats); err != nil || json.Unmarshal(sb, &st) != nil {
				t.Fatalf("stats: %v", err)
			}
			ports := bytes.Count(b, []byte("<port "))
			if !st.Interrupted || uint64(ports) != st.Open+st.Closed || ports == 0 || !bytes.Contains(b, []byte(`exit="success"`)) {
				t.Errorf("interrupted %v: %d ports in the file, the scan counted %d open + %d closed; runstats finished %v",
					st.Interrupted, ports, st.Open, st.Closed, bytes.Contains(b, []byte(`exit="success"`)))
			}
			if lint, err := exec.Command("xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", out).CombinedOutput(); err != nil {
				t.Errorf("xmllint --dtdvalid: %v\n%s", err, lint)
			}
		})
	}

	t.Run("SIGKILL", func(t *testing.T) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("random kill moments from seed %d", seed)
		rnd := rand.New(rand.NewPCG(seed, 0))
		open, closed := portTruth(tb.Config, "198.18.32.0/20", scanPorts...)
		for trial := range 6 {
			format := []string{"ndjson", "xml", "json"}[trial%3]
			after := time.Duration(rnd.Int64N(int64(3 * time.Second)))
			killAndCheck(t, tb, format, after, open, closed)
		}
	})
}

// checkResultsArriveInTime runs a slow scan and reads its NDJSON results
// while it runs, from a pipe or by polling the output file.
func checkResultsArriveInTime(t *testing.T, tb *testbed.Testbed, where string) {
	const prefix = "198.18.1.0/26" // port 22: 64 open pairs, 50/s for 1.3 s
	open, closed := portTruth(tb.Config, prefix, 22)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"netns", "exec", tb.ScanNS(), binary, "scan", prefix, "-p", "22", "--allow", "198.18.0.0/15",
		"--rate", "50", "--wait", "1s", "--status", "none", "--format", "ndjson"}
	out := filepath.Join(t.TempDir(), "slow.ndjson")
	if where == "file" {
		args = append(args, "-o", out)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	type arrival struct {
		line []byte
		at   time.Time
	}
	var mu sync.Mutex
	var got []arrival
	var readErr error
	record := func(line []byte, at time.Time) {
		mu.Lock()
		got = append(got, arrival{bytes.Clone(line), at})
		mu.Unlock()
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	sched := watchScheduler(done)
	if where == "file" {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { // poll the file: every read must end on a whole line
			defer wg.Done()
			var off int
			for {
				// Once the scan has exited, one last read and done.
				final := false
				select {
				case <-done:
					final = true
				default:
				}
				b, _ := os.ReadFile(out)
				now := time.Now()
				if len(b) > off && b[len(b)-1] != '\n' {
					readErr = fmt.Errorf("the file ends mid-line: %q", b[max(0, len(b)-60):])
				}
				for off < len(b) {
					i := bytes.IndexByte(b[off:], '\n')
					if i < 0 {
						break
					}
					record(b[off:off+i], now)
					off += i + 1
				}
				if final {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	} else {
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(stdout)
			for {
				line, err := r.ReadBytes('\n')
				if len(line) > 0 {
					record(bytes.TrimSuffix(line, []byte("\n")), time.Now())
				}
				if err != nil {
					return
				}
			}
		}()
	}
	if where == "stdout pipe" {
		wg.Wait() // the pipe must be drained before Wait closes it
	}
	err := cmd.Wait()
	exited := time.Now()
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatalf("scan: %v\n%s", err, stderr.String())
	}
	if readErr != nil {
		t.Error(readErr)
	}
	// The bound: FlushDelay, plus the ring consumer's longest idle poll
	// (40 ms, ringbuf's default), plus 100 ms, plus the longest this
	// machine's scheduler kept a sleeping goroutine waiting during the scan
	// (the 2 CPUs are shared with other tests: load averages of 10 happen).
	slack := 40*time.Millisecond + 100*time.Millisecond + sched.worst()
	var worst time.Duration
	var lags []time.Duration
	seen := map[pair]bool{}
	for _, a := range got {
		var r ndjsonResult
		if err := json.Unmarshal(a.line, &r); err != nil {
			t.Fatalf("line %q: %v", a.line, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, r.TS)
		if err != nil {
			t.Fatalf("line %q: ts: %v", a.line, err)
		}
		lag := a.at.Sub(ts)
		worst = max(worst, lag)
		lags = append(lags, lag)
		if lag > output.FlushDelay+slack {
			t.Errorf("%s:%d arrived at %s, readable only %v later (bound %v + %v slack)", r.IP, r.Port, ts.Format("15:04:05.000"), lag, output.FlushDelay, slack)
		}
		seen[pair{netip.MustParseAddr(r.IP), r.Port}] = true
	}
	slices.Sort(lags)
	median := time.Duration(0)
	if len(lags) > 0 {
		median = lags[len(lags)/2]
	}
	t.Logf("%s: %d results readable after they arrived in %v (median), %v (max); scheduler delay up to %v; the scan exited %v after the first was read",
		where, len(got), median.Round(time.Millisecond), worst.Round(time.Millisecond), sched.worst().Round(time.Millisecond),
		exited.Sub(firstAt(got, func(a arrival) time.Time { return a.at })).Round(time.Millisecond))
	if len(seen) != len(open)+len(closed) || len(got) != len(seen) {
		t.Errorf("%d results (%d distinct), want %d", len(got), len(seen), len(open)+len(closed))
	}
	if len(got) > 0 && exited.Sub(got[0].at) < time.Second {
		t.Errorf("the first result was read only %v before the scan exited: results are not written as they arrive", exited.Sub(got[0].at))
	}
}

// schedWatch measures how late a goroutine sleeping 5 ms is woken.
type schedWatch struct {
	mu  sync.Mutex
	max time.Duration
}

func (w *schedWatch) worst() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

func watchScheduler(done <-chan struct{}) *schedWatch {
	w := &schedWatch{}
	go func() {
		for {
			start := time.Now()
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			late := time.Since(start) - 5*time.Millisecond
			w.mu.Lock()
			w.max = max(w.max, late)
			w.mu.Unlock()
		}
	}()
	return w
}

func firstAt[T any](s []T, at func(T) time.Time) time.Time {
	if len(s) == 0 {
		return time.Time{}
	}
	return at(s[0])
}

// killAndCheck starts a scan writing format to a file, SIGKILLs it after
// the file's first flush plus after, and checks the file: whole NDJSON
// lines, a JSON array, or an XML document valid against nmap's DTD, every
// result in the truth.
func killAndCheck(t *testing.T, tb *testbed.Testbed, format string, after time.Duration, open, closed map[pair]bool) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "killed."+format)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 20,480 probes at 5000/s: about 4 s of results.
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", tb.ScanNS(), binary, "scan", "198.18.32.0/20", "-p", scanPortsFlag,
		"--allow", "198.18.0.0/15", "--rate", "5000", "--wait", "1s", "--status", "none", "--format", format, "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// From the first flush on, every state of the file must be whole.
	for {
		if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
			break
		}
		if ctx.Err() != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: nothing written to %s in 60 s: %s", format, out, stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(after)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	cmd.Wait()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	results := 0
	switch format {
	case "ndjson":
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("ndjson killed %v after its first flush: torn last line %q", after, b[max(0, bytes.LastIndexByte(b, '\n')+1):])
			b = b[:bytes.LastIndexByte(b, '\n')+1]
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r ndjsonResult
			if err := json.Unmarshal(line, &r); err != nil {
				t.Errorf("ndjson killed %v after its first flush: line %q: %v", after, line, err)
				continue
			}
			results++
			if p := (pair{netip.MustParseAddr(r.IP), r.Port}); !open[p] && !closed[p] {
				t.Errorf("ndjson: %s:%d is not in the truth", r.IP, r.Port)
			}
		}
	case "json":
		// masscan's -oJ array: valid after every flush (its "]" rides in
		// each write and is written over by the next).
		if out, err := exec.Command("jq", "length", out).CombinedOutput(); err != nil {
			t.Errorf("json killed %v after its first flush: jq: %v\n%s", after, err, out)
		}
		var recs []struct {
			IP    string `json:"ip"`
			Ports []struct {
				Port uint16 `json:"port"`
			} `json:"ports"`
		}
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Errorf("json killed %v after its first flush: %v", after, err)
		}
		for _, r := range recs {
			results++
			if p := (pair{netip.MustParseAddr(r.IP), r.Ports[0].Port}); !open[p] && !closed[p] {
				t.Errorf("json: %s:%d is not in the truth", r.IP, r.Ports[0].Port)
			}
		}
	case "xml":
		// The hosts are written when the scan ends: killed, the file is a
		// valid document (against nmap's DTD) that says it did not finish.
		if lint, err := exec.Command("xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", out).CombinedOutput(); err != nil {
			t.Errorf("xml killed %v after its first flush: xmllint: %v\n%s", after, err, lint)
		}
		var run struct {
			Hosts []struct {
				Address struct {
					Addr string `xml:"addr,attr"`
				} `xml:"address"`
				Ports []struct {
					PortID uint16 `xml:"portid,attr"`
				} `xml:"ports>port"`
			} `xml:"host"`
			Finished struct {
				Exit string `xml:"exit,attr"`
			} `xml:"runstats>finished"`
		}
		if err := xml.Unmarshal(b, &run); err != nil {
			t.Errorf("xml killed %v after its first flush: %v", after, err)
		}
		// Killed before it ended (the scan runs about 5 s): no host yet, and
		// runstats say so. Killed after: every host, exit="success".
		if run.Finished.Exit != "success" && (run.Finished.Exit != "error" || len(run.Hosts) > 0) {
			t.Errorf("xml killed %v after its first flush: exit %q with %d hosts:\n%s", after, run.Finished.Exit, len(run.Hosts), b)
		}
		for _, h := range run.Hosts {
			for _, port := range h.Ports {
				results++
				if p := (pair{netip.MustParseAddr(h.Address.Addr), port.PortID}); !open[p] && !closed[p] {
					t.Errorf("xml: %s:%d is not in the truth", h.Address.Addr, port.PortID)
				}
			}
		}
	}
	t.Logf("%s killed %v after its first flush: %d results, %d bytes", format, after.Round(time.Millisecond), results, len(b))
}
