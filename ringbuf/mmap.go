package ringbuf

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Record header bits (include/uapi/linux/bpf.h).
const (
	ringbufBusyBit    = 1 << 31
	ringbufDiscardBit = 1 << 30
	ringbufHdrSize    = 8
)

// ring reads a BPF ring buffer in place through its mmap'd pages.
//
// cilium/ebpf's ringbuf.Reader copies each record and publishes the
// consumer position after every record, which moves the cache line the
// producer checks on every reserve between the CPUs once per record. ring
// hands out records where they lie (the kernel maps the data pages twice,
// so a record that wraps is still contiguous) and publishes the consumer
// position once per batch.
type ring struct {
	consumerPage []byte // RW: consumer position
	producer     []byte // RO: producer position page, then the data twice
	data         []byte
	mask         uint64
	epfd         int
	events       [1]unix.EpollEvent
	// poller is epfd (a duplicate) in Go's network poller, when it took it: a wait then
	// parks the goroutine instead of blocking its thread in epoll_wait.
	// A thread blocked in a system call is one Go's sysmon checks every
	// 20 us and takes the processor from after each wait (4-5% of a
	// max-rate scan's CPU in perf, with one CPU).
	poller     *os.File
	pollerConn syscall.RawConn
	cons       uint64 // our position; published by commit
	prod       uint64 // the producer position last read
	last       uint64 // where the record next returned last lies (its header)
	committed  uint64 // the consumer position last published
}

func openRing(m *ebpf.Map) (*ring, error) {
	if m.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("map %s is a %s, not a ring buffer", m, m.Type())
	}
	page := os.Getpagesize()
	size := int(m.MaxEntries())
	fd := m.FD()
	cp, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap consumer page: %w", err)
	}
	pp, err := unix.Mmap(fd, int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(cp)
		return nil, fmt.Errorf("mmap producer pages: %w", err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Munmap(cp)
		unix.Munmap(pp)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(epfd)
		unix.Munmap(cp)
		unix.Munmap(pp)
		return nil, fmt.Errorf("epoll on ring buffer: %w", err)
	}
	r := &ring{consumerPage: cp, producer: pp, data: pp[page:], mask: uint64(size - 1), epfd: epfd}
	r.cons = atomic.LoadUint64(r.consumerPos())
	r.committed = r.cons
	r.usePoller()
	return r, nil
}

// usePoller hands epfd to Go's network poller: an epoll descriptor is
// readable while its own interest list (the ring) has data, and waking
// the ring wakes it. Without it (a descriptor the poller refuses) wait
// blocks in epoll_wait.
func (r *ring) usePoller() {
	// A duplicate, so that a descriptor the poller refuses can be closed
	// without closing epfd, the fallback.
	dup, err := unix.FcntlInt(uintptr(r.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	if unix.SetNonblock(dup, true) != nil { // epoll_wait ignores O_NONBLOCK: epfd's waits are unchanged
		unix.Close(dup)
		return
	}
	f := os.NewFile(uintptr(dup), "ringbuf-epoll")
	conn, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		f.Close()
		return
	}
	r.poller, r.pollerConn = f, conn
}

func (r *ring) consumerPos() *uint64 { return (*uint64)(unsafe.Pointer(&r.consumerPage[0])) }
func (r *ring) producerPos() *uint64 { return (*uint64)(unsafe.Pointer(&r.producer[0])) }

// available is the number of bytes submitted and not yet given back by
// commit. Safe to call from any goroutine.
func (r *ring) available() uint64 {
	return atomic.LoadUint64(r.producerPos()) - atomic.LoadUint64(r.consumerPos())
}

// next returns the next committed record's payload, or ok=false when none
// is ready (empty, or the next one is still being written). The payload
// stays valid until commit.
func (r *ring) next() (payload []byte, ok bool) {
	for {
		// The producer's page is written on every reserve: read it again
		// only once the records already known are consumed, not once per
		// record. So an empty ring is always told from a fresh reading
		// (idle relies on it).
		if r.cons >= r.prod {
			r.prod = atomic.LoadUint64(r.producerPos())
			if r.cons >= r.prod {
				return nil, false
			}
		}
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[r.cons&r.mask])))
		if hdr&ringbufBusyBit != 0 {
			return nil, false
		}
		n := uint64(hdr &^ (ringbufBusyBit | ringbufDiscardBit))
		start := (r.cons & r.mask) + ringbufHdrSize
		r.last = r.cons
		r.cons += (n + ringbufHdrSize + 7) &^ 7
		if hdr&ringbufDiscardBit != 0 {
			continue
		}
		return r.data[start : start+n : start+n], true
	}
}

// read hands fn each of up to most next records, those of at least size
// bytes (a header's): got counts every record taken, short those too
// small, which are skipped.
func (r *ring) read(most, size int, fn func(raw []byte)) (got, short int) {
	for got < most {
		raw, ok := r.next()
		if !ok {
			break
		}
		got++
		if len(raw) < size {
			short++
			continue
		}
		fn(raw)
	}
	return got, short
}

// commit gives everything consumed so far back to the producer.
func (r *ring) commit() { r.commitTo(r.cons) }

// commitTo gives the ring back up to pos (at most r.cons): the records
// from pos on stay where they are, and valid.
func (r *ring) commitTo(pos uint64) {
	if pos != r.committed {
		atomic.StoreUint64(r.consumerPos(), pos)
		r.committed = pos
	}
}

// idle says the last next that found nothing found the ring empty, with
// no record being written (rather than stopped at one still being
// written), from a producer position it read itself.
func (r *ring) idle() bool { return r.cons == r.prod }

// unread says records were submitted past what next has returned. Unlike
// available, records read and held (not yet given back) do not count.
func (r *ring) unread() bool { return atomic.LoadUint64(r.producerPos()) != r.cons }

// wait blocks until the kernel signals new data or d passes.
func (r *ring) wait(d time.Duration) error {
	if r.poller != nil {
		return r.park(d)
	}
	ms := int(d / time.Millisecond)
	if d > 0 && ms == 0 {
		ms = 1
	}
	for {
		_, err := unix.EpollWait(r.epfd, r.events[:], ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait on ring buffer: %w", err)
		}
		return nil
	}
}

// park waits in Go's poller: the goroutine sleeps until the ring's epoll
// descriptor is woken (or was, since the last wait) or d passes.
func (r *ring) park(d time.Duration) error {
	if err := r.poller.SetReadDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("wait on ring buffer: %w", err)
	}
	first := true
	err := r.pollerConn.Read(func(uintptr) bool {
		if first {
			first = false
			return r.available() > 0
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wait on ring buffer: %w", err)
	}
	return nil
}

func (r *ring) close() error {
	if r.poller != nil {
		r.poller.Close()
	}
	err := unix.Close(r.epfd)
	unix.Munmap(r.consumerPage)
	unix.Munmap(r.producer)
	return err
}
