package transmit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/xdpscan/xdpscan/probe"
	"golang.org/x/sys/unix"
)

// SocketBatch is how many frames one sendmmsg call carries. On veth, batches
// of 64 sent ~1.6x the packets of one sendto per packet.
const SocketBatch = 64

// mmsghdr is struct mmsghdr; x/sys/unix has no sendmmsg wrapper.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// Sender transmits batches of prebuilt frames: from a raw socket
// (Socket) or from the kernel (XDP).
type Sender interface {
	// Batch is the most frames one Send takes.
	Batch() int
	// Buffer is slot i's frame buffer (0 <= i < Batch).
	Buffer(i int) []byte
	// Send transmits slots [0, len(lens)) whose frames have the given
	// lengths; it returns when all are sent, or on ctx done or an error.
	Send(ctx context.Context, lens []int) error
	// Counts are the frames sent and the failed sends so far.
	Counts() (sent, errs uint64)
	Close() error
}

// Socket sends frames on an AF_PACKET socket in sendmmsg batches.
type Socket struct {
	file  *os.File        // fd in Go's network poller: a full socket parks the goroutine
	rc    syscall.RawConn // file's
	bufs  [SocketBatch][probe.MaxFrame]byte
	iovs  [SocketBatch]unix.Iovec
	msgs  [SocketBatch]mmsghdr
	addr  unix.RawSockaddrLinklayer
	Sent  atomic.Uint64
	Errs  atomic.Uint64 // failed sends (each retried)
	Waits atomic.Uint64 // times the socket was full and we waited for it

	// One Send's state, for sendSome (a method value made once: a closure
	// per Send would be an allocation per batch).
	n, done  int
	errno    unix.Errno
	send     func(fd uintptr) bool
	deadline time.Time // the file's write deadline: a wait returns by then to look at ctx
}

// NewSocket opens a raw socket bound to the named interface, in the
// current network namespace. It needs CAP_NET_RAW.
func NewSocket(iface string) (*Socket, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("open raw socket on %s: no such interface; see `ip link`", iface)
	}
	// Protocol 0: send only; the socket never queues received packets.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("open raw socket: not permitted: sending probes needs CAP_NET_RAW (run as root)")
		}
		return nil, fmt.Errorf("open raw socket: %w", err)
	}
	t := &Socket{}
	// Non-blocking, so os.NewFile puts it in the network poller.
	t.file = os.NewFile(uintptr(fd), "raw socket on "+iface)
	if t.rc, err = t.file.SyscallConn(); err != nil {
		t.file.Close()
		return nil, fmt.Errorf("open raw socket on %s: %w", iface, err)
	}
	t.send = t.sendSome
	t.addr = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(ifc.Index), Halen: 6}
	for i := range t.msgs {
		t.iovs[i].Base = &t.bufs[i][0]
		t.msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&t.addr))
		t.msgs[i].hdr.Namelen = uint32(unsafe.Sizeof(t.addr))
		t.msgs[i].hdr.Iov = &t.iovs[i]
		t.msgs[i].hdr.Iovlen = 1
	}
	return t, nil
}

// Buffer returns slot i's frame buffer (0 <= i < BatchSize).
func (t *Socket) Buffer(i int) []byte { return t.bufs[i][:] }

// Batch is BatchSize: one sendmmsg call.
func (t *Socket) Batch() int { return SocketBatch }

// Counts are Sent and Errs.
func (t *Socket) Counts() (sent, errs uint64) { return t.Sent.Load(), t.Errs.Load() }

// Send transmits slots [0, n) whose frames have the given lengths. It
// returns when all are sent, or ctx is done. A full socket (EAGAIN) parks
// the goroutine in Go's network poller until the socket takes more, never
// spun on, and nothing is dropped; a device that refuses a frame (ENOBUFS)
// is given 50 us.
//
// Why the poller and a raw system call: with sendmmsg as a blocking
// system call (Syscall6), and a full socket waited out in poll(2), Go's
// sysmon took the processor from the thread in the kernel on every call
// of 64 frames (~80 us, past its 20 us check) and on every wait, and
// handed it back after: 6-8% of a max-rate scan's CPU in sysmon, its
// nanosleeps, futex wakeups and the scheduler (perf, kernel target, the
// scan pinned to one CPU). The socket never blocks (SOCK_NONBLOCK), so a
// raw call is safe; a wait parks only this goroutine, and the ring reader
// runs meanwhile on the same processor.
func (t *Socket) Send(ctx context.Context, lens []int) error {
	t.n, t.done = len(lens), 0
	for i, l := range lens {
		t.iovs[i].SetLen(l)
	}
	for t.done < t.n {
		if now := time.Now(); now.After(t.deadline.Add(-waitSlice / 2)) {
			// A wait returns within waitSlice to look at ctx; the deadline
			// is moved only when half used, not on every batch.
			t.deadline = now.Add(waitSlice)
			if err := t.file.SetWriteDeadline(t.deadline); err != nil {
				return fmt.Errorf("raw socket: set write deadline: %w", err)
			}
		}
		t.errno = 0
		err := t.rc.Write(t.send)
		switch {
		case t.errno == unix.ENOBUFS:
			// The device refused the frame, not the socket: it is
			// writable already, so give the queue a moment.
			t.Errs.Add(1)
			t.Waits.Add(1)
			if err := ctx.Err(); err != nil {
				return err
			}
			time.Sleep(50 * time.Microsecond)
		case t.errno != 0:
			t.Errs.Add(1)
			return fmt.Errorf("sendmmsg: %w", t.errno)
		case errors.Is(err, os.ErrDeadlineExceeded):
			if err := ctx.Err(); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("raw socket: wait to send: %w", err)
		}
	}
	return nil
}

// waitSlice is the longest a full socket is waited on before Send looks at
// its context again.
const waitSlice = 100 * time.Millisecond

// sendSome sends what is left of the batch in t.n, t.done; false (wait
// until writable, then call again) when the socket is full. Any other
// failure ends the call with t.errno set.
func (t *Socket) sendSome(fd uintptr) bool {
	for t.done < t.n {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&t.msgs[t.done])), uintptr(t.n-t.done), 0, 0, 0)
		switch errno {
		case 0:
			t.done += int(r)
			t.Sent.Add(uint64(r))
		case unix.EINTR:
		case unix.EAGAIN:
			t.Waits.Add(1)
			return false
		default:
			t.errno = errno
			return true
		}
	}
	return true
}

// Close closes the socket.
func (t *Socket) Close() error { return t.file.Close() }
