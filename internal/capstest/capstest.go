// Package capstest runs test code with fewer capabilities than the test
// process holds, so tests can check what a user with only the documented
// capabilities (CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW) can do.
//
// Linux credentials belong to a thread, and the kernel's checks at load time
// (the verifier's allow_ptr_leaks is perfmon_capable(), bpf_capable() for
// the load itself) read the calling thread's effective set. So WithEffective
// locks the goroutine to its thread, lowers that thread's effective set,
// runs fn and raises it back: the permitted set is untouched, and no other
// thread of the test process changes. Root's uid alone grants nothing here:
// capable() looks only at the effective set.
package capstest

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Capability numbers the tests name (linux/capability.h).
const (
	NetAdmin = unix.CAP_NET_ADMIN
	NetRaw   = unix.CAP_NET_RAW
	SysAdmin = unix.CAP_SYS_ADMIN
	Perfmon  = unix.CAP_PERFMON
	BPF      = unix.CAP_BPF
)

func capGet() (unix.CapUserHeader, [2]unix.CapUserData, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	err := unix.Capget(&hdr, &data[0])
	return hdr, data, err
}

// WithEffective runs fn on a thread whose effective capability set is only
// caps (each must be in the permitted set). It fails the test if the set
// cannot be lowered or restored.
func WithEffective(t testing.TB, caps []int, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	// The thread's set is restored below; if that failed, the thread must
	// die with the goroutine rather than serve other goroutines lowered.
	restored := false
	defer func() {
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	hdr, saved, err := capGet()
	if err != nil {
		t.Fatalf("capget: %v", err)
	}
	lowered := saved
	lowered[0].Effective, lowered[1].Effective = 0, 0
	for _, c := range caps {
		lowered[c/32].Effective |= 1 << (uint(c) % 32)
	}
	if lowered[0].Effective&^saved[0].Permitted != 0 || lowered[1].Effective&^saved[1].Permitted != 0 {
		t.Fatalf("capabilities %v are not all permitted to this test process: run it as root", caps)
	}
	if err := unix.Capset(&hdr, &lowered[0]); err != nil {
		t.Fatalf("capset (lower to %v): %v", caps, err)
	}
	defer func() {
		if err := unix.Capset(&hdr, &saved[0]); err != nil {
			t.Errorf("capset (restore): %v", err)
			return
		}
		restored = true
	}()
	fn()
}

// Names is "CAP_BPF+CAP_NET_ADMIN" for test names and messages.
func Names(caps []int) string {
	s := ""
	for i, c := range caps {
		if i > 0 {
			s += "+"
		}
		switch c {
		case BPF:
			s += "CAP_BPF"
		case NetAdmin:
			s += "CAP_NET_ADMIN"
		case NetRaw:
			s += "CAP_NET_RAW"
		case Perfmon:
			s += "CAP_PERFMON"
		case SysAdmin:
			s += "CAP_SYS_ADMIN"
		default:
			s += fmt.Sprintf("cap%d", c)
		}
	}
	return s
}
