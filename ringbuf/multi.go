package ringbuf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/reorder"
)

// Multi reads several ring buffers (one per CPU) from one goroutine: each
// turn reads every ring in place up to a batch, and one epoll over all of
// them waits when every ring is empty. The records of one ring come in
// their submission order; putting the rings' records in one order is the
// caller's (internal/reorder), told after each turn which rings were
// empty.
type Multi[T any] struct {
	rings []*ring
	opts  Options
	epfd  int
	// As ring.poller: the epoll descriptor in Go's poller, so a wait
	// parks the goroutine rather than its thread.
	poller     *os.File
	pollerConn syscall.RawConn
	records    []atomic.Uint64
	short      atomic.Uint64
	// RunMerged's merge, kept from one call to the next, and the
	// handler of the call under way.
	mg     *reorder.Merger
	handle func(src int, hdr *T, payload []byte)
}

// NewMulti opens a consumer on the ring buffers ms.
func NewMulti[T any](ms []*ebpf.Map, opts Options) (*Multi[T], error) {
	m := &Multi[T]{opts: opts.withDefaults(), epfd: -1, records: make([]atomic.Uint64, len(ms))}
	fail := func(err error) (*Multi[T], error) {
		m.Close()
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	m.epfd = epfd
	for i, mp := range ms {
		r, err := openRing(mp)
		if err != nil {
			return fail(fmt.Errorf("open ring buffer %d of %d (%s): %w", i+1, len(ms), mp, err))
		}
		m.rings = append(m.rings, r)
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, mp.FD(), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}); err != nil {
			return fail(fmt.Errorf("epoll on ring buffer %d: %w", i, err))
		}
	}
	if dup, err := unix.FcntlInt(uintptr(epfd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
		if unix.SetNonblock(dup, true) != nil {
			unix.Close(dup)
		} else {
			f := os.NewFile(uintptr(dup), "ringbuf-multi-epoll")
			if conn, err := f.SyscallConn(); err == nil && f.SetReadDeadline(time.Time{}) == nil {
				m.poller, m.pollerConn = f, conn
			} else {
				f.Close()
			}
		}
	}
	return m, nil
}

// Rings is the number of rings read.
func (m *Multi[T]) Rings() int { return len(m.rings) }

// Records returns how many records each ring delivered so far.
func (m *Multi[T]) Records() []uint64 {
	out := make([]uint64, len(m.records))
	for i := range m.records {
		out[i] = m.records[i].Load()
	}
	return out
}

// RunRecords reads until ctx is cancelled, then drains every ring and
// returns. handle gets each record of ring src, valid only during the
// call; turn is called after each pass over the rings with the ones that
// had nothing to read when the pass began (the moment is now, CLOCK_MONOTONIC ns).
func (m *Multi[T]) RunRecords(ctx context.Context, handle func(src int, hdr *T, payload []byte), turn func(now int64, empty []bool)) error {
	size := int(unsafe.Sizeof(*new(T)))
	commitEvery := 4 * m.opts.BatchSize
	empty := make([]bool, len(m.rings))
	return m.loop(ctx, func(now int64) (total int, full bool) {
		for i, r := range m.rings {
			got, short := r.read(commitEvery, size, func(raw []byte) {
				handle(i, (*T)(unsafe.Pointer(unsafe.SliceData(raw))), raw[size:])
			})
			empty[i] = got == 0
			if got > 0 {
				r.commit()
				m.records[i].Add(uint64(got - short))
				m.short.Add(uint64(short))
			}
			full = full || got == commitEvery
			total += got
		}
		turn(now, empty)
		return total, full
	})
}

// loop runs pass over the rings until ctx is cancelled and a pass finds
// nothing, waiting in epoll when a pass found nothing. pass reads from
// every ring: total is how many records it read, full that some ring had
// more than it took.
func (m *Multi[T]) loop(ctx context.Context, pass func(now int64) (total int, full bool)) error {
	draining := false
	var drainUntil time.Time
	poll := m.opts.PollInterval
	for {
		total, full := pass(monoNow())
		if total > 0 {
			poll = m.opts.PollInterval
		}
		if full {
			continue
		}
		if draining && total == 0 {
			if m.busy() && time.Now().Before(drainUntil) {
				time.Sleep(busyRecordWait) // as Consumer's drain
				continue
			}
			return nil
		}
		if ctx.Err() != nil {
			draining = true
			drainUntil = time.Now().Add(busyDrainLimit)
			continue
		}
		if total > 0 {
			continue
		}
		if err := m.wait(poll); err != nil {
			return err
		}
		poll = min(2*poll, m.opts.IdlePollInterval)
	}
}

// busy says some ring's reading stopped at a record still being written.
func (m *Multi[T]) busy() bool {
	for _, r := range m.rings {
		if !r.idle() {
			return true
		}
	}
	return false
}

func (m *Multi[T]) pending() bool {
	for _, r := range m.rings {
		if r.unread() {
			return true
		}
	}
	return false
}

func (m *Multi[T]) wait(d time.Duration) error {
	if m.poller == nil {
		ms := max(int(d/time.Millisecond), 1)
		var ev [4]unix.EpollEvent
		for {
			n, err := unix.EpollWait(m.epfd, ev[:], ms)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("wait on ring buffers: %w", err)
			}
			if n > 0 && !m.pending() {
				// Only records read and held (RunMerged) keep a ring
				// readable, which epoll's level cannot tell from new
				// ones: wait out d instead of spinning.
				time.Sleep(d)
			}
			return nil
		}
	}
	if err := m.poller.SetReadDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("wait on ring buffers: %w", err)
	}
	first := true
	err := m.pollerConn.Read(func(uintptr) bool {
		if first {
			first = false
			return m.pending()
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wait on ring buffers: %w", err)
	}
	return nil
}

// Close releases the rings. Call it after RunRecords has returned.
func (m *Multi[T]) Close() error {
	var first error
	if m.poller != nil {
		m.poller.Close()
	}
	for _, r := range m.rings {
		if err := r.close(); err != nil && first == nil {
			first = err
		}
	}
	if m.epfd >= 0 {
		if err := unix.Close(m.epfd); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// monoNow is CLOCK_MONOTONIC in nanoseconds, the clock of the records'
// stamps (bpf_ktime_get_ns), read once per pass. x/sys's ClockGettime is a
// system call (3-5% of a per-CPU capture's CPU in pprof, a pass every few
// records); Go's own monotonic clock reads the same clock through the
// vDSO, so it is used from a base read once. The base is read before
// Go's, so monoNow is at most that gap (microseconds) behind the clock:
// on the side of holding a record longer, never of releasing it early.
func monoNow() int64 { return monoBase + int64(time.Since(monoStart)) }

var monoBase, monoStart = func() (int64, time.Time) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano(), time.Now()
}()
