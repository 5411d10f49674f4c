package capture

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/outfile"
)

// RotateOptions are tcpdump's -C, -G, -W and -z for a -w file.
type RotateOptions struct {
	// File.Path is the -w name: with Every, a strftime(3) pattern.
	File FileOptions
	// SizeBytes (-C): before a packet is written, a file already larger
	// than this is closed and the next one opened (0: no size rotation).
	SizeBytes int64
	// Every (-G, whole seconds): a packet whose time is this far past the
	// start of its file's period goes to a new file (0: no time rotation).
	Every time.Duration
	// Files (-W): with SizeBytes, a ring of this many names reused in turn;
	// with Every alone, the capture ends once this many files are closed.
	Files int
	// PostRotate (-z) is run as `PostRotate FILE` for each file closed by
	// a rotation, once the file is complete and in place.
	PostRotate string
	// Counters reads what the receive path has seen and lost in all so far
	// (ok false: it cannot say, as libpcap's path during a capture), for
	// each pcapng file's statistics block.
	Counters func() (seen, dropped uint64, ok bool)
	// Log takes notices (a name already taken, a -z command that failed).
	Log io.Writer
}

// ErrFileLimit ends a capture rotating with -G and -W: its last file is
// closed, as tcpdump exits there.
var ErrFileLimit = errors.New("-W file limit reached")

// Rotation writes a capture into a series of files, tcpdump's way: each is
// a whole pcap or pcapng file with its own header (and for pcapng its own
// statistics block), the switch happens between two packets on the
// capture's own goroutine, so no packet is lost or split by it. Names are
// tcpdump's (-w NAME, then NAME1, NAME2, ...; NAME0.. with -W; strftime with
// -G).
//
// Each file is written beside its name (.NAME.xdpscan-*) and put in place
// when it is complete, by a goroutine of its own that also runs the -z
// command, so the capture never waits for a disk sync. A file is put in
// place without ever replacing one: where the name is taken (a file from
// before the capture, or one this capture wrote under the same strftime
// name) it becomes NAME.1, NAME.2, ... with a notice. The one exception is
// the ring of -C with -W, which replaces its own files, as it is asked to.
type Rotation struct {
	o      RotateOptions
	pfo    PacketFileOptions
	pw     *PacketWriter
	f      *outfile.Replace
	cw     countWriter
	wanted string
	digits int   // tcpdump's WflagChars: zero-padding of the -C count
	ccount int   // tcpdump's Cflag_count
	gcount int   // tcpdump's Gflag_count
	gtime  int64 // start of the current -G period, Unix seconds
	limit  bool  // -G -W: done
	hasCnt bool
	base   [2]uint64 // counters when the current file was opened
	sum    [2]uint64 // what the closed files' statistics blocks said
	fin    *finisher
}

// countWriter counts what reaches the file.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// wflagChars is how many digits tcpdump pads the -C count to under -W N:
// those of N-1.
func wflagChars(n int) int {
	c := 0
	for n--; n > 0; n /= 10 {
		c++
	}
	return c
}

// NewRotation opens the first file. Call it once the capture runs and
// privileges are dropped (files are created as the user the capture goes
// on as, as tcpdump -Z does): every rotation creates files.
func NewRotation(o RotateOptions) (*Rotation, error) {
	if o.File.Path == "" || o.File.Path == "-" {
		return nil, errors.New("-C, -G and -W rotate files: -w names one")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	r := &Rotation{o: o, pfo: packetFileOptions(o.File), gtime: time.Now().Unix()}
	if o.Files > 0 {
		r.digits = wflagChars(o.Files)
	}
	if o.Counters != nil {
		s, d, ok := o.Counters()
		r.hasCnt, r.base = ok, [2]uint64{s, d}
	}
	r.fin = newFinisher(o.PostRotate, o.Log, o.File.Path)
	digits := 0
	if o.SizeBytes > 0 {
		digits = r.digits
	}
	if err := r.open(time.Unix(r.gtime, 0), 0, digits); err != nil {
		r.fin.close()
		return nil, err
	}
	return r, nil
}

// name is tcpdump's MakeFilename.
func (r *Rotation) name(t time.Time, count, digits int) (string, error) {
	base := r.o.File.Path
	if r.o.Every > 0 {
		var err error
		if base, err = Strftime(base, t); err != nil {
			return "", err
		}
	}
	if count == 0 && digits == 0 {
		return base, nil
	}
	return fmt.Sprintf("%s%0*d", base, digits, count), nil
}

func (r *Rotation) open(t time.Time, count, digits int) error {
	name, err := r.name(t, count, digits)
	if err != nil {
		return err
	}
	f := r.fin.spare(filepath.Dir(name))
	if f == nil {
		var err error
		if f, err = outfile.CreateBeside(name, 0o644); err != nil {
			return fmt.Errorf("-w: %w", err)
		}
	}
	r.cw = countWriter{w: f}
	pw, err := NewPacketWriter(&r.cw, r.pfo)
	if err != nil {
		f.Abort()
		return err
	}
	r.f, r.pw, r.wanted = f, pw, name
	return nil
}

// Write writes p, first closing the current file and opening the next
// where -G or -C says so. After the -G -W limit it returns ErrFileLimit.
func (r *Rotation) Write(p *Packet) error {
	if r.limit {
		return ErrFileLimit
	}
	if err := r.fin.failed(); err != nil {
		return err
	}
	if r.o.Every > 0 {
		// The packet's own time, not the clock's when it is read: a file
		// then holds exactly the packets of its period, even when the ring
		// is read late.
		t := p.TimeNs / 1e9
		if t-r.gtime >= int64(r.o.Every/time.Second) {
			r.gtime = t
			r.gcount++
			if err := r.rotate(); err != nil {
				return err
			}
			if r.o.SizeBytes == 0 && r.o.Files > 0 && r.gcount >= r.o.Files {
				r.limit = true
				fmt.Fprintf(r.o.Log, "Maximum file limit reached: %d\n", r.o.Files)
				return ErrFileLimit
			}
			r.ccount = 0
			digits := 0
			if r.o.SizeBytes > 0 {
				digits = r.digits
			}
			if err := r.open(time.Unix(t, 0), 0, digits); err != nil {
				return err
			}
		}
	}
	// As tcpdump: the size before this packet, buffered bytes included, so
	// a file ends at most one packet past -C.
	if r.o.SizeBytes > 0 && r.cw.n+int64(r.pw.buf.Buffered()) > r.o.SizeBytes {
		if err := r.rotate(); err != nil {
			return err
		}
		r.ccount++
		if r.o.Files > 0 && r.ccount >= r.o.Files {
			r.ccount = 0
		}
		if err := r.open(time.Unix(r.gtime, 0), r.ccount, r.digits); err != nil {
			return err
		}
	}
	return r.pw.Write(p)
}

// rotate ends the current file with what the capture saw and lost while it
// was open, and hands it to the finisher.
func (r *Rotation) rotate() error {
	seen, dropped := uint64(pcapgo.NgNoValue64), uint64(pcapgo.NgNoValue64)
	if r.hasCnt {
		if s, d, ok := r.o.Counters(); ok {
			seen, dropped = s-r.base[0], d-r.base[1]
			r.base = [2]uint64{s, d}
			r.sum[0] += seen
			r.sum[1] += dropped
		}
	}
	f := r.f
	r.f = nil
	if err := r.pw.Close(seen, dropped); err != nil {
		f.Abort()
		return fmt.Errorf("close capture file %s: %w", r.wanted, err)
	}
	r.fin.add(finishJob{f: f, wanted: r.wanted, ring: r.o.Files > 0 && r.o.SizeBytes > 0, postRotate: true})
	return nil
}

// Close ends the last file with the rest of the capture's figures (st:
// the whole capture's, less what the earlier files said), waits until
// every file is in place and every -z command has run, and returns runErr,
// or else the first error writing or placing a file. A capture that failed
// before writing anything leaves no file.
func (r *Rotation) Close(st Stats, runErr error) error {
	err := runErr
	if r.f != nil {
		seen, dropped := uint64(pcapgo.NgNoValue64), uint64(pcapgo.NgNoValue64)
		if r.hasCnt {
			seen, dropped = st.Seen-min(st.Seen, r.sum[0]), st.RingLost-min(st.RingLost, r.sum[1])
		}
		cerr := r.pw.Close(seen, dropped)
		switch {
		case cerr != nil:
			r.f.Abort()
			if err == nil {
				err = fmt.Errorf("close capture file %s: %w", r.wanted, cerr)
			}
		case err == nil || st.Written > 0:
			r.fin.add(finishJob{f: r.f, wanted: r.wanted, ring: r.o.Files > 0 && r.o.SizeBytes > 0})
		default:
			r.f.Abort()
		}
		r.f = nil
	}
	if ferr := r.fin.close(); err == nil {
		err = ferr
	}
	return err
}

// Files are the names the files were put in place under, in order (a ring
// name once per use).
func (r *Rotation) Files() []string { return r.fin.placed }

// finishJob is one complete file waiting to be put in place.
type finishJob struct {
	f          *outfile.Replace
	wanted     string
	ring       bool // a ring name: replace this capture's own file there
	postRotate bool // closed by a rotation: -z runs on it
}

// finisher syncs and places files and runs the -z command, in order, off
// the capture's goroutine: a sync takes milliseconds, during which a
// flood would fill the ring.
type finisher struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []finishJob
	closing bool
	err     error
	hasErr  atomic.Bool // err is set: read for every packet, without the lock
	// spares holds a file created ahead in the -w directory: creating one
	// took 0.5-0.9 ms here (ext4, a busy machine), a pause that at -C 1
	// under a flood of 1.7M packets a second lost packets in the ring.
	spares    chan *outfile.Replace
	spareBase string // the -w name, for the spares' temporary names
	wantSpare bool
	done      chan struct{}
	post      string
	log       io.Writer
	ours      map[string]string // wanted name -> where this capture put it
	placed    []string
	posts     chan string
	postErr   chan struct{}
}

func newFinisher(post string, log io.Writer, pattern string) *finisher {
	fz := &finisher{done: make(chan struct{}), post: post, log: log, ours: map[string]string{},
		spares: make(chan *outfile.Replace, 1), spareBase: pattern, wantSpare: true}
	fz.cond = sync.NewCond(&fz.mu)
	if post != "" {
		// Its own goroutine: a slow command (gzip of a big file) must not
		// hold back placing the next files.
		fz.posts = make(chan string, 1<<16)
		fz.postErr = make(chan struct{})
		go fz.runPosts()
	}
	go fz.run()
	return fz
}

func (fz *finisher) add(j finishJob) {
	fz.mu.Lock()
	fz.queue = append(fz.queue, j)
	fz.mu.Unlock()
	fz.cond.Signal()
}

func (fz *finisher) failed() error {
	if !fz.hasErr.Load() {
		return nil
	}
	fz.mu.Lock()
	defer fz.mu.Unlock()
	return fz.err
}

func (fz *finisher) setErr(err error) {
	fz.mu.Lock()
	if fz.err == nil {
		fz.err = err
	}
	fz.mu.Unlock()
	fz.hasErr.Store(true)
}

// spare is a file created ahead in dir, or nil (then the caller creates
// one): the next is made at once.
func (fz *finisher) spare(dir string) *outfile.Replace {
	select {
	case f := <-fz.spares:
		fz.mu.Lock()
		fz.wantSpare = true
		fz.mu.Unlock()
		fz.cond.Signal()
		if filepath.Dir(f.Path()) == dir {
			return f
		}
		f.Abort() // a strftime pattern moved to another directory
	default:
	}
	return nil
}

// close waits for every queued file and command.
func (fz *finisher) close() error {
	fz.mu.Lock()
	fz.closing = true
	fz.mu.Unlock()
	fz.cond.Signal()
	<-fz.done
	select {
	case f := <-fz.spares:
		f.Abort()
	default:
	}
	if fz.posts != nil {
		close(fz.posts)
		<-fz.postErr
	}
	if len(fz.placed) > 0 && fz.err == nil {
		if err := outfile.SyncFS(filepath.Dir(fz.placed[len(fz.placed)-1])); err != nil {
			fz.setErr(err)
		}
	}
	return fz.err
}

func (fz *finisher) run() {
	defer close(fz.done)
	for {
		fz.mu.Lock()
		for len(fz.queue) == 0 && !fz.closing && !fz.wantSpare {
			fz.cond.Wait()
		}
		if fz.wantSpare && !fz.closing {
			fz.wantSpare = false
			fz.mu.Unlock()
			if f, err := outfile.CreateBeside(fz.spareBase, 0o644); err == nil {
				fz.spares <- f
			} // else the writer creates its file itself, and says why
			continue
		}
		if len(fz.queue) == 0 {
			fz.mu.Unlock()
			return
		}
		j := fz.queue[0]
		fz.queue = fz.queue[1:]
		failed := fz.err != nil
		fz.mu.Unlock()
		if failed {
			j.f.Abort()
			continue
		}
		name, err := fz.place(j)
		if err != nil {
			fz.setErr(err)
			continue
		}
		fz.placed = append(fz.placed, name)
		if j.postRotate && fz.posts != nil {
			fz.posts <- name
		}
	}
}

// maxSuffix bounds the search for a free name.
const maxSuffix = 1000

// place seals j's file and renames it to its name, or, where that is taken
// by a file this capture may not replace, to the first free NAME.N.
func (fz *finisher) place(j finishJob) (string, error) {
	// No fsync per file: measured under a 670k pps XDP flood with -C 1
	// (70 rotations a second), syncing each file lost 17% of the packets
	// in the ring and not syncing lost none. tcpdump never syncs; close
	// syncs the filesystem once at the end.
	if err := j.f.Seal(false); err != nil {
		return "", err
	}
	if prev, ok := fz.ours[j.wanted]; ok && j.ring {
		return prev, j.f.Place(prev, false)
	}
	for i := range maxSuffix {
		name := j.wanted
		if i > 0 {
			name = fmt.Sprintf("%s.%d", j.wanted, i)
		}
		err := j.f.Place(name, true)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if i > 0 {
			fmt.Fprintf(fz.log, "xdpscan: %s exists: this file is %s (a rotation never writes over a file)\n", j.wanted, name)
		}
		fz.ours[j.wanted] = name
		return name, nil
	}
	j.f.Discard()
	return "", fmt.Errorf("%s and %s.1 to .%d all exist: clear them or name another -w", j.wanted, j.wanted, maxSuffix-1)
}

// runPosts runs `post FILE` for each file in turn, as tcpdump does: by its
// name on PATH, no shell, at the lowest priority, with the capture's own
// credentials (by then no capability at all, no_new_privs, and under -Z
// the user's IDs), in a process group of its own so that the terminal's
// Ctrl-C for the capture does not cut it short.
func (fz *finisher) runPosts() {
	defer close(fz.postErr)
	for name := range fz.posts {
		cmd := exec.Command(fz.post, name)
		cmd.Stdout, cmd.Stderr = os.Stdout, fz.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(fz.log, "xdpscan: -z %s %s: %v\n", fz.post, name, err)
			continue
		}
		_ = unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, 19)
		if err := cmd.Wait(); err != nil {
			fmt.Fprintf(fz.log, "xdpscan: -z %s %s: %v\n", fz.post, name, err)
		}
	}
}
