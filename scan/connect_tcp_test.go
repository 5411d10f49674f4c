package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/targets"
	"golang.org/x/sys/unix"
)

// inFreshNetns runs fn on a thread of its own in a new network namespace
// holding only lo, up: the sockets fn makes live there, so the probes never
// leave the test. The thread is never unlocked; it ends with its goroutine.
func inFreshNetns(t *testing.T, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("a new network namespace needs root (CAP_SYS_ADMIN): run the scan tests as root, as make test does")
	}
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		done <- func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ifr, err := unix.NewIfreq("lo")
			if err != nil {
				return err
			}
			ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
			if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
				return fmt.Errorf("set lo up: %w", err)
			}
			return fn()
		}()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// listenTCP listens on 127.0.0.1 with backlog and returns the socket and its port.
func listenTCP(backlog int) (int, uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, uint16(sa.(*unix.SockaddrInet4).Port), nil
}

// tcpConnect against the kernel's own answers: the state the kernel holds
// decides, even when the deadline had passed before the socket was first
// looked at (a starved scanner); a listener whose queue is full drops the
// SYN, and the retransmitted SYN is answered within the timeout the timer
// gives.
func TestTCPConnectAsksTheKernel(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	inFreshNetns(t, func() error {
		ln, open, err := listenTCP(4096)
		if err != nil {
			return err
		}
		defer unix.Close(ln)
		// Backlog 0: one connection waits in the accept queue, and every
		// further SYN is dropped until it is accepted.
		full, fullPort, err := listenTCP(0)
		if err != nil {
			return err
		}
		defer unix.Close(full)
		if err := tcpConnect(context.Background(), lo, fullPort, time.Second); err != nil {
			return fmt.Errorf("filling the accept queue: %w", err)
		}
		const closedPort = 1 // nothing listens in a fresh namespace

		tests := []struct {
			name    string
			port    uint16
			timeout time.Duration
			want    string // "open", "closed" or "timeout"
		}{
			{"open", open, time.Second, "open"},
			{"open, deadline passed before the first look", open, 0, "open"},
			{"closed", closedPort, time.Second, "closed"},
			{"closed, deadline passed before the first look", closedPort, 0, "closed"},
			{"SYN dropped by a full queue: no answer", fullPort, 300 * time.Millisecond, "timeout"},
		}
		for _, tc := range tests {
			err := tcpConnect(context.Background(), lo, tc.port, tc.timeout)
			r, cerr := classifyDialError(Result{}, err)
			got := map[bool]string{true: "open", false: string(r.State)}[err == nil]
			if got == "" && cerr == nil {
				got = "timeout"
			}
			if got != tc.want {
				return fmt.Errorf("%s: %q (error %v), want %q", tc.name, got, err, tc.want)
			}
		}

		// The kernel sends the dropped SYN again at 1s; the queue has room by
		// then. A 1s timeout gave up at that instant; the timer's waits for it.
		go func() {
			time.Sleep(300 * time.Millisecond)
			if nfd, _, err := unix.Accept(full); err == nil {
				unix.Close(nfd)
			}
		}()
		timer := &connectTimer{floor: 100 * time.Millisecond}
		timer.observe(lo, targets.ProtoTCP, 50*time.Microsecond) // a fast path: the least margin
		start := time.Now()
		err = tcpConnect(context.Background(), lo, fullPort, timer.timeout(lo, targets.ProtoTCP))
		took := time.Since(start)
		if err != nil || took < synRetransmit {
			return fmt.Errorf("behind a full queue: %v after %v; want open after the SYN retransmission at %v", err, took, synRetransmit)
		}

		// An interrupt ends the wait at once, with the context's error.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start = time.Now()
		if err := tcpConnect(ctx, lo, fullPort, 5*time.Second); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
			return fmt.Errorf("cancelled connect: %v after %v", err, time.Since(start))
		}
		return nil
	})
}
