package output

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/scan"
	"golang.org/x/sys/unix"
)

// Formats accepted by --format.
var Formats = []string{"human", "ndjson", "list", "grepable", "csv", "xml"}

// FlushDelay bounds how long a result waits in the Writer's buffer:
// results are printed as they arrive, give or take this, and a SIGKILL
// loses at most the results of the last FlushDelay.
const FlushDelay = 100 * time.Millisecond

const (
	pendingCap = 64 << 10
	// A record (a few hundred bytes at most) and the XML trailer always
	// fit above flushAt, so appending to pending never reallocates.
	flushAt = pendingCap - 2<<10
)

// xmlTrailer is written after every flush of an XML regular file and
// sought back over before the next one, so the file is a complete document
// whenever a flush has ended.
const xmlTrailer = "</nmaprun>\n"

var errWriterClosed = errors.New("result writer already closed")

// Writer writes results as they arrive: buffered for throughput, but
// each flush is one Write of whole records (one write(2) on a file, so a
// SIGKILL never leaves a torn line), made when the buffer fills and at most
// FlushDelay after a result entered it. Write is called from one goroutine
// and allocates nothing per result; Flush and Close may be called from any.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	format  string
	pending []byte // whole records not yet written
	// rewind is set for XML on a regular file opened without O_APPEND: each
	// flush ends with xmlTrailer and steps back over it.
	rewind io.Seeker
	timer  *time.Timer
	armed  bool
	err    error // the first write error: every later call returns it
	closed bool
}

// NewWriter writes format to w. Unknown formats are an error. The
// header (if the format has one) goes out with the first flush, within
// FlushDelay.
func NewWriter(w io.Writer, format string) (*Writer, error) {
	return newWriter(w, format, true)
}

// newWriter is NewWriter, without the format's header when
// header is false (NewWriterAppend).
func newWriter(w io.Writer, format string, header bool) (*Writer, error) {
	rw := &Writer{w: w, format: format, pending: make([]byte, 0, pendingCap)}
	switch format {
	case "human", "ndjson", "grepable":
	case "list":
		rw.pending = append(rw.pending, "#masscan\n"...)
	case "csv":
		rw.pending = append(rw.pending, "ip,port,proto,state,ttl,ts\n"...)
	case "xml":
		rw.pending = fmt.Appendf(rw.pending, "<?xml version=\"1.0\"?>\n<nmaprun scanner=\"xdpscan\" start=\"%d\" version=\"1\" xmloutputversion=\"1.05\">\n"+
			"<scaninfo type=\"syn\" protocol=\"tcp\"/>\n", time.Now().Unix())
		rw.rewind = rewindable(w)
	default:
		return nil, fmt.Errorf("unknown --format %q: use one of %v", format, Formats)
	}
	if !header {
		rw.pending = rw.pending[:0]
	}
	rw.timer = time.AfterFunc(time.Hour, rw.tick)
	rw.timer.Stop()
	if len(rw.pending) > 0 {
		// The header goes out soon even if no result comes: an XML file is
		// then a complete (empty) document from its first flush on.
		rw.armed = true
		rw.timer.Reset(FlushDelay)
	}
	return rw, nil
}

// rewindable returns w as a Seeker if it is a regular file whose writes
// land at its offset (not O_APPEND, where every write goes to the end and
// a trailer could not be overwritten).
func rewindable(w io.Writer) io.Seeker {
	f, ok := w.(*os.File)
	if fw, isWrapper := w.(interface{ File() *os.File }); !ok && isWrapper {
		// A writer over one file that writes at its offset (the
		// output file of cmd/xdpscan, internal/outfile.Stream).
		f, ok = fw.File(), true
	}
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	flags, ferr := -1, error(nil)
	if err := sc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		return nil
	}
	if flags&unix.O_APPEND != 0 {
		return nil
	}
	if _, err := f.Seek(0, io.SeekCurrent); err != nil {
		return nil
	}
	return f
}

// Write writes one result.
func (rw *Writer) Write(r scan.Result) error {
	// The lock (uncontended but for the timer's flush every FlushDelay) is
	// about 15 ns of the cost of a result.
	rw.mu.Lock()
	if rw.closed {
		rw.mu.Unlock()
		return errWriterClosed
	}
	rw.pending = rw.appendRecord(rw.pending, r)
	switch {
	case len(rw.pending) >= flushAt:
		rw.flushLocked()
	case !rw.armed:
		// The oldest pending result is at most FlushDelay from the page.
		rw.armed = true
		rw.timer.Reset(FlushDelay)
	}
	err := rw.err
	rw.mu.Unlock()
	return err
}

// appendRecord appends r in rw's format, ending with a newline.
func (rw *Writer) appendRecord(b []byte, r scan.Result) []byte {
	switch rw.format {
	case "human":
		b = append(b, r.State...)
		for i := len(r.State); i < 7; i++ {
			b = append(b, ' ')
		}
		if len(r.State) >= 7 {
			b = append(b, ' ')
		}
		b = append(b, r.Proto...)
		b = append(b, ' ')
		if r.Proto != "icmp" {
			b = netip.AddrPortFrom(r.Addr, r.Port).AppendTo(b) // [2001:2::7]:22 for IPv6
		} else {
			b = r.Addr.AppendTo(b)
		}
		if r.TTL != 0 { // 0: a connect scan, which never sees the reply's header
			b = append(b, " ttl="...)
			b = strconv.AppendUint(b, uint64(r.TTL), 10)
		}
		if r.State == scan.StateFiltered || r.Proto != "tcp" {
			b = append(b, ' ')
			b = append(b, r.Reason...)
		}
		if r.From.IsValid() {
			b = append(b, " from "...)
			b = r.From.AppendTo(b)
		}
	case "ndjson":
		b = append(b, `{"ip":"`...)
		b = r.Addr.AppendTo(b)
		b = append(b, `","port":`...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, `,"proto":"`...)
		b = append(b, r.Proto...)
		b = append(b, `","state":"`...)
		b = append(b, r.State...)
		b = append(b, `","reason":"`...)
		b = append(b, r.Reason...)
		if r.From.IsValid() {
			b = append(b, `","from":"`...)
			b = r.From.AppendTo(b)
		}
		b = append(b, `","ttl":`...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, `,"ts":"`...)
		b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
	case "list": // masscan -oL: "open tcp 80 198.18.0.1 1700000000"
		b = append(b, r.State...)
		b = append(b, ' ')
		b = append(b, r.Proto...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, ' ')
		b = r.Addr.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
	case "grepable": // masscan -oG
		b = append(b, "Timestamp: "...)
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
		b = append(b, "\tHost: "...)
		b = r.Addr.AppendTo(b)
		b = append(b, " ()\tPorts: "...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, '/')
		b = append(b, r.State...)
		b = append(b, '/')
		b = append(b, r.Proto...)
		b = append(b, "////"...)
	case "csv":
		b = r.Addr.AppendTo(b)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, ',')
		b = append(b, r.Proto...)
		b = append(b, ',')
		b = append(b, r.State...)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, ',')
		b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	case "xml": // one <host> per result, as masscan -oX does
		b = append(b, `<host endtime="`...)
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
		b = append(b, `"><address addr="`...)
		b = r.Addr.AppendTo(b)
		if r.Addr.Is6() {
			b = append(b, `" addrtype="ipv6"/><ports><port protocol="`...)
		} else {
			b = append(b, `" addrtype="ipv4"/><ports><port protocol="`...)
		}
		b = append(b, r.Proto...)
		b = append(b, `" portid="`...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, `"><state state="`...)
		b = append(b, r.State...)
		b = append(b, `" reason="`...)
		b = append(b, r.Reason...)
		b = append(b, `" reason_ttl="`...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, `"/></port></ports></host>`...)
	}
	return append(b, '\n')
}

// tick is the timer's flush.
func (rw *Writer) tick() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.armed = false
	if !rw.closed {
		rw.flushLocked()
	}
}

// flushLocked writes what is pending in one Write. On a rewindable XML
// file the trailer rides in the same write and the offset steps back over
// it, so the next flush overwrites it (every flush is at least as long as
// the trailer: nothing of an old one is left behind).
func (rw *Writer) flushLocked() {
	if rw.armed {
		rw.timer.Stop()
		rw.armed = false
	}
	if len(rw.pending) == 0 || rw.err != nil {
		return
	}
	b := rw.pending
	if rw.rewind != nil {
		b = append(b, xmlTrailer...)
	}
	_, err := rw.w.Write(b)
	if err == nil && rw.rewind != nil {
		_, err = rw.rewind.Seek(-int64(len(xmlTrailer)), io.SeekCurrent)
	}
	rw.pending = rw.pending[:0]
	rw.err = err
}

// Close writes any trailer and the rest, and stops the flush timer.
func (rw *Writer) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.closed {
		return rw.err
	}
	rw.closed = true
	switch rw.format {
	case "list":
		rw.pending = append(rw.pending, "# end\n"...)
	case "xml":
		rw.pending = fmt.Appendf(rw.pending, "<runstats><finished time=\"%d\"/></runstats>\n</nmaprun>\n", time.Now().Unix())
	}
	rw.rewind = nil // the final trailer is the real one
	rw.flushLocked()
	rw.timer.Stop()
	return rw.err
}

// Flush writes what is pending now (on a signal, say). Safe to call from
// any goroutine, also after Close.
func (rw *Writer) Flush() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if !rw.closed {
		rw.flushLocked()
	}
	return rw.err
}
