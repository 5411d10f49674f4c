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

// Formats accepted by --format. list, json and ndjson are masscan's -oL,
// -oJ and -oD; xml, grepable and normal are nmap's -oX, -oG and -oN.
var Formats = []string{"human", "ndjson", "list", "grepable", "csv", "xml", "json", "normal"}

// Grouped says format writes one record per host with all its ports
// (nmap's three): its results are held until Close (see hosts.go).
func Grouped(format string) bool {
	return format == "xml" || format == "grepable" || format == "normal"
}

// Appendable says a file of format can be appended to (--append-output,
// --resume): not a document that ends with a closing tag or bracket, nor
// one written whole at the end.
func Appendable(format string) bool {
	return !Grouped(format) && format != "json"
}

// Options are what a Writer may be told beside its format.
type Options struct {
	// Meta describes the scan to the formats that carry it (nmap's).
	Meta Meta
	// TempDir is where a grouped format sorts more results than it holds
	// in memory ("": os.TempDir()).
	TempDir string
	// SpillAt is how many results a grouped format holds in memory before
	// it sorts them to TempDir (0: 256Ki).
	SpillAt int
}

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

// jsonTrailer, like the XML writer's, is written after every flush of a
// regular file and sought back over before the next one, so the file is a
// complete document whenever a flush has ended.
const jsonTrailer = "]\n"

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
	// rewind is set for XML and JSON on a regular file opened without
	// O_APPEND: each flush ends with trailer and steps back over it.
	rewind  io.Seeker
	trailer string
	meta    Meta
	svc     *Services
	hosts   *hostStore // the grouped formats' results, until Close
	records int        // json: records written (the separator goes before all but the first)
	timer   *time.Timer
	armed   bool
	err     error // the first write error: every later call returns it
	closed  bool
}

// NewWriter writes format to w. Unknown formats are an error. The
// header (if the format has one) goes out with the first flush, within
// FlushDelay.
func NewWriter(w io.Writer, format string) (*Writer, error) {
	return New(w, format, Options{})
}

// New is NewWriter with Options.
func New(w io.Writer, format string, opt Options) (*Writer, error) {
	return newWriter(w, format, true, opt)
}

// csvHeader names csv's columns. Before the reason and from columns it
// was "ip,port,proto,state,ttl,ts" (still read back).
const csvHeader = "ip,port,proto,state,reason,from,ttl,ts"

// newWriter is New, without the format's header when header is false
// (NewWriterAppend).
func newWriter(w io.Writer, format string, header bool, opt Options) (*Writer, error) {
	rw := &Writer{w: w, format: format, pending: make([]byte, 0, pendingCap), meta: opt.Meta}
	rw.meta.start()
	if Grouped(format) {
		rw.svc = rw.meta.Services
		if rw.svc == nil {
			rw.svc = defaultServices()
		}
		rw.hosts = newHostStore(opt.TempDir, opt.SpillAt)
	}
	switch format {
	case "human", "ndjson":
	case "list":
		rw.pending = append(rw.pending, "#masscan\n"...)
	case "csv":
		rw.pending = append(rw.pending, csvHeader+"\n"...)
	case "json":
		rw.pending = append(rw.pending, "[\n"...)
		rw.trailer, rw.rewind = jsonTrailer, rewindable(w)
	case "xml":
		rw.pending = rw.meta.xmlHeader(rw.pending)
		rw.trailer, rw.rewind = rw.meta.xmlUnfinished(), rewindable(w)
	case "grepable", "normal":
		rw.pending = rw.meta.grepHeader(rw.pending)
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
	if rw.hosts != nil {
		if rw.err == nil {
			rw.err = rw.hosts.add(r)
		}
		err := rw.err
		rw.mu.Unlock()
		return err
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
	case "list": // masscan -oL: "open tcp 80 198.18.0.1 1700000000", "open icmp 0 ..." for an echo reply
		b = append(b, masscanState(r.State)...)
		b = append(b, ' ')
		b = append(b, r.Proto...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, ' ')
		b = r.Addr.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
	case "csv":
		b = r.Addr.AppendTo(b)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, ',')
		b = append(b, r.Proto...)
		b = append(b, ',')
		b = append(b, r.State...)
		b = append(b, ',')
		b = append(b, r.Reason...)
		b = append(b, ',')
		if r.From.IsValid() {
			b = r.From.AppendTo(b)
		}
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, ',')
		b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	case "json": // masscan -oJ: one object per result, a "," line between them
		if rw.records > 0 {
			b = append(b, ",\n"...)
		}
		rw.records++
		b = append(b, `{   "ip": "`...)
		b = r.Addr.AppendTo(b)
		b = append(b, `",   "timestamp": "`...)
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
		b = append(b, `", "ports": [ {"port": `...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, `, "proto": "`...)
		b = append(b, r.Proto...)
		b = append(b, `", "status": "`...)
		b = append(b, masscanState(r.State)...)
		b = append(b, `", "reason": "`...)
		b = append(b, r.Reason...)
		if r.From.IsValid() {
			b = append(b, `", "from": "`...)
			b = r.From.AppendTo(b)
		}
		b = append(b, `", "ttl": `...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, `} ] }`...)
	}
	return append(b, '\n')
}

// masscanState is masscan's word for a state: an echo reply is "open"
// (masscan -oL: "open icmp 0 198.18.0.1 ...").
func masscanState(s scan.State) string {
	if s == scan.StateUp {
		return string(scan.StateOpen)
	}
	return string(s)
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
		b = append(b, rw.trailer...)
	}
	_, err := rw.w.Write(b)
	if err == nil && rw.rewind != nil {
		_, err = rw.rewind.Seek(-int64(len(rw.trailer)), io.SeekCurrent)
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
	rw.timer.Stop()
	var counts hostCounts
	if rw.hosts != nil {
		if rw.err == nil {
			rw.err = rw.writeHosts(&counts)
		}
		rw.hosts.close()
	}
	end := time.Now()
	switch rw.format {
	case "list":
		rw.pending = append(rw.pending, "# end\n"...)
	case "json":
		rw.pending = append(rw.pending, jsonTrailer...)
	case "xml":
		rw.pending = rw.meta.xmlTrailer(rw.pending, counts, end)
	case "grepable", "normal":
		rw.pending = rw.meta.grepTrailer(rw.pending, counts, end)
	}
	seeker := rw.rewind
	rw.rewind = nil // the final trailer is the real one
	rw.flushLocked()
	// The last write may be shorter than the provisional trailer it
	// overwrites (the hosts flushed just before, only the real trailer
	// left): cut what remains of the old one, or the document would end
	// in its tail (TestTerminalOutput/interrupt saw a stray ">").
	if f, ok := seeker.(interface {
		io.Seeker
		Truncate(int64) error
	}); ok && rw.err == nil {
		off, err := f.Seek(0, io.SeekCurrent)
		if err == nil {
			err = f.Truncate(off)
		}
		rw.err = err
	}
	return rw.err
}

// writeHosts writes a grouped format's hosts, sorted, flushing as the
// buffer fills (an XML file stays a valid document between flushes).
func (rw *Writer) writeHosts(c *hostCounts) error {
	var seen uint64
	err := rw.hosts.eachHost(func(host []scan.Result) error {
		seen++
		if up, _ := hostStatus(host); up {
			c.up++
		}
		switch rw.format {
		case "xml":
			rw.pending = rw.meta.xmlHost(rw.pending, host, rw.svc)
		case "grepable":
			rw.pending = rw.meta.grepHost(rw.pending, host, rw.svc)
		case "normal":
			rw.pending = rw.meta.normalHost(rw.pending, host, rw.svc)
		}
		if len(rw.pending) >= flushAt {
			rw.flushLocked()
		}
		return rw.err
	})
	*c = rw.meta.counts(c.up, seen)
	return err
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
