package transmit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
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
	fd    int
	bufs  [SocketBatch][probe.MaxFrame]byte
	iovs  [SocketBatch]unix.Iovec
	msgs  [SocketBatch]mmsghdr
	addr  unix.RawSockaddrLinklayer
	Sent  atomic.Uint64
	Errs  atomic.Uint64 // failed sends (each retried)
	Waits atomic.Uint64 // times the socket was full and we waited for POLLOUT
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
	t := &Socket{fd: fd}
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
// returns when all are sent, or ctx is done. A full socket (EAGAIN,
// ENOBUFS) is waited out with poll, never spun on, and nothing is dropped.
func (t *Socket) Send(ctx context.Context, lens []int) error {
	n := len(lens)
	for i, l := range lens {
		t.iovs[i].SetLen(l)
	}
	done := 0
	for done < n {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(t.fd),
			uintptr(unsafe.Pointer(&t.msgs[done])), uintptr(n-done), 0, 0, 0)
		if errno == 0 {
			done += int(r)
			t.Sent.Add(uint64(r))
			continue
		}
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.ENOBUFS:
			if errno == unix.ENOBUFS {
				t.Errs.Add(1)
			}
			t.Waits.Add(1)
			if err := ctx.Err(); err != nil {
				return err
			}
			fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, 1); err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("poll raw socket: %w", err)
			}
			if errno == unix.ENOBUFS {
				// The device refused the frame, not the socket: POLLOUT is
				// already true, so give the queue a moment.
				time.Sleep(50 * time.Microsecond)
			}
		default:
			t.Errs.Add(1)
			return fmt.Errorf("sendmmsg: %w", errno)
		}
	}
	return nil
}

// Close closes the socket.
func (t *Socket) Close() error { return unix.Close(t.fd) }
