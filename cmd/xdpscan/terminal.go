package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/xdpscan/xdpscan/scan"
)

// clearLine returns the cursor to the first column and erases the row:
// the one control sequence a status line needs, sent only to a terminal.
const clearLine = "\r\x1b[K"

// console shares the process's stdout and stderr between results, the
// live status line and messages. On a terminal the status line is drawn in
// place on stderr's last row; whatever else is printed there first erases
// it and then draws it again below, so results and messages are never
// overwritten by a status tick nor left with a status line's remnants.
// Where stderr is not a terminal no control sequence is ever written: the
// status is printed as plain lines.
type console struct {
	mu  sync.Mutex
	out io.Writer // results
	err io.Writer // status and messages
	// errTTY: err is a terminal, where the status line is redrawn in place.
	errTTY bool
	// shared: out is that same terminal, so results pass through the
	// console to erase and redraw the status line around them.
	shared bool
	// width is the terminal's width in columns (0: unknown). A status line
	// as long as the row would wrap, and erasing the last row would leave
	// its first half behind, so it is cut to width-1.
	width func() int

	status  []byte // the status line on the screen now (nil: none)
	partial []byte // a result line still waiting for its newline
	buf     []byte
}

// stdio is the process's console, on os.Stdout and os.Stderr.
var stdio = sync.OnceValue(func() *console {
	errTTY := term.IsTerminal(int(os.Stderr.Fd()))
	return &console{out: os.Stdout, err: os.Stderr, errTTY: errTTY,
		shared: errTTY && sameTerminal(os.Stdout, os.Stderr),
		width: func() int {
			w, _, err := term.GetSize(int(os.Stderr.Fd()))
			if err != nil {
				return 0
			}
			return w
		}}
})

// sameTerminal reports whether a and b are the same terminal device.
func sameTerminal(a, b *os.File) bool {
	if !term.IsTerminal(int(a.Fd())) || !term.IsTerminal(int(b.Fd())) {
		return false
	}
	var sa, sb unix.Stat_t
	if unix.Fstat(int(a.Fd()), &sa) != nil || unix.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Rdev == sb.Rdev
}

// results is where the result writer should write: the console itself when
// it shares the terminal with the status line, else stdout unchanged (so
// the writer still sees an *os.File, and a regular file's XML trailer can
// be rewritten in place).
func (c *console) results() io.Writer {
	if c.shared {
		return c
	}
	return c.out
}

// Write writes result bytes to out, whole lines only: a line without its
// newline yet is kept until the rest arrives. The status line is erased
// before and drawn again after, all in one write.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	end := bytes.LastIndexByte(c.partial, '\n') + 1
	if end == 0 {
		return len(p), nil
	}
	b := c.buf[:0]
	if c.status != nil {
		b = append(b, clearLine...)
	}
	b = append(b, c.partial[:end]...)
	b = append(b, c.status...)
	c.buf = b
	c.partial = c.partial[:copy(c.partial, c.partial[end:])]
	_, err := c.out.Write(b)
	return len(p), err
}

// Close writes what is left of an unfinished result line.
func (c *console) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) == 0 {
		return nil
	}
	b := append([]byte(nil), c.partial...)
	c.partial = c.partial[:0]
	_, err := c.out.Write(b)
	return err
}

// setStatus shows line as the status: in place on a terminal, else as one
// more plain line.
func (c *console) setStatus(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.errTTY {
		c.err.Write(append([]byte(line), '\n'))
		return
	}
	if w := c.width(); w > 1 && len(line) > w-1 {
		line = line[:w-1] // the status line is ASCII: bytes are columns
	}
	c.status = append(c.status[:0], line...)
	c.err.Write(append([]byte(clearLine), line...))
}

// clearStatus erases the status line, if one is shown.
func (c *console) clearStatus() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == nil {
		return
	}
	c.status = nil
	c.err.Write([]byte(clearLine))
}

// printf prints a message on err, above the status line. Messages end with
// a newline; one is added if missing.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg := fmt.Appendf(nil, format, args...)
	if len(msg) == 0 || msg[len(msg)-1] != '\n' {
		msg = append(msg, '\n')
	}
	if c.status == nil {
		c.err.Write(msg)
		return
	}
	b := append([]byte(clearLine), msg...)
	c.err.Write(append(b, c.status...))
}

// statusLine prints progress once a second: on the console's status line
// (text) or as JSON lines (json).
type statusLine struct {
	mode     string
	progress *scan.Progress
	console  *console
	done     chan struct{}
	finished chan struct{}
	started  time.Time
}

func newStatusLine(mode string, p *scan.Progress) *statusLine {
	c := stdio()
	if mode == "auto" {
		mode = "none"
		if c.errTTY {
			mode = "text"
		}
	}
	return &statusLine{mode: mode, progress: p, console: c, done: make(chan struct{}), finished: make(chan struct{})}
}

func (s *statusLine) start() {
	s.started = time.Now()
	if s.mode == "none" {
		close(s.finished)
		return
	}
	go func() {
		defer close(s.finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastSent, lastReplies uint64
		last := time.Now()
		for {
			select {
			case <-s.done:
				s.console.clearStatus() // the summary that follows says it all
				return
			case now := <-t.C:
				p := s.progress
				sent, total, replies := p.Sent.Load(), p.Total.Load(), p.Replies.Load()
				dt := now.Sub(last).Seconds()
				c := p.Counters()
				sendPPS, replyPPS := float64(sent-lastSent)/dt, float64(replies-lastReplies)/dt
				lastSent, lastReplies, last = sent, replies, now
				pct := 100.0
				if total > 0 {
					pct = 100 * float64(sent) / float64(total)
				}
				eta := time.Duration(0)
				if sendPPS > 0 && total > sent {
					eta = time.Duration(float64(total-sent) / sendPPS * float64(time.Second))
				}
				elapsed := now.Sub(s.started).Seconds()
				if s.mode == "json" {
					b, _ := json.Marshal(map[string]any{"elapsed_s": elapsed, "done_pct": pct, "eta_s": eta.Seconds(),
						"send_pps": sendPPS, "reply_pps": replyPPS, "open": p.Open.Load(), "closed": p.Closed.Load(),
						"filtered_icmp": p.Filtered.Load(), "up": p.Up.Load(),
						"duplicates": c.Duplicates, "ring_lost": c.RingLost, "tx_errors": p.TxErrors.Load()})
					s.console.printf("%s\n", b)
					continue
				}
				extra := ""
				if n := p.Filtered.Load(); n > 0 {
					extra += fmt.Sprintf(" filt %d", n)
				}
				if n := p.Up.Load(); n > 0 {
					extra += fmt.Sprintf(" up %d", n)
				}
				s.console.setStatus(fmt.Sprintf("%6.1fs %5.1f%% ETA %-6s send %8.0f/s  reply %8.0f/s  open %d closed %d%s dup %d lost %d txerr %d",
					elapsed, pct, eta.Round(time.Second), sendPPS, replyPPS, p.Open.Load(), p.Closed.Load(), extra,
					c.Duplicates, c.RingLost, p.TxErrors.Load()))
			}
		}
	}()
}

func (s *statusLine) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	<-s.finished
}
