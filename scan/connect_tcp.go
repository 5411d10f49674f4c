package scan

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// tcpConnect is a non-blocking connect that, unlike net.Dialer, asks the
// kernel how the connect stands when its deadline fires. On a starved
// machine the deadline's timer and the socket's readiness can be handled in
// the same late scheduler round, timer first: net.Dialer then reports a
// timeout for a connection the kernel had established in time. Here the
// socket's own state decides: established is open, a pending error (RST:
// ECONNREFUSED; an ICMP error) is that answer, and only a connect still in
// SYN_SENT timed out.
//
// It returns nil for established, the connect's error (an *os.SyscallError
// holding the errno) for an answer or a failure, and os.ErrDeadlineExceeded
// for no answer. The socket is closed with SO_LINGER 0: an RST, no
// TIME_WAIT left behind.
func tcpConnect(ctx context.Context, addr netip.Addr, port uint16, timeout time.Duration) error {
	addr = addr.Unmap()
	var (
		family int
		sa     unix.Sockaddr
	)
	if addr.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(port), Addr: addr.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(port), Addr: addr.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("setsockopt SO_LINGER", err)
	}
	switch err := unix.Connect(fd, sa); err {
	case nil:
		unix.Close(fd)
		return nil
	case unix.EINPROGRESS:
	default:
		unix.Close(fd)
		return os.NewSyscallError("connect", err)
	}
	// Non-blocking: os.NewFile puts it on the netpoller, so the wait below
	// parks a goroutine, not a thread.
	f := os.NewFile(uintptr(fd), "tcp-probe")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var result error
	settled := func(fd uintptr) bool {
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			result = os.NewSyscallError("getsockopt SO_ERROR", err)
			return true
		case soerr != 0:
			result = os.NewSyscallError("connect", unix.Errno(soerr))
			return true
		}
		// SO_ERROR 0: established, or still in SYN_SENT (ENOTCONN).
		if _, err := unix.Getpeername(int(fd)); err == nil {
			result = nil
			return true
		}
		return false
	}
	if err := f.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err // not on the netpoller: no way to wait without a thread
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Now()) })
	defer stop()
	err = rc.Write(settled) // waits for writability (connected or failed)
	if err == nil {
		return result
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	// The deadline fired: what does the kernel say now?
	done := false
	if cerr := rc.Control(func(fd uintptr) { done = settled(fd) }); cerr != nil {
		return cerr
	}
	if done {
		return result
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return os.ErrDeadlineExceeded
}
