package privs

/*
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

// What every thread applies to itself when it takes the signal. Written by
// privs_arm before any signal is sent; read only in the handler.
static volatile uint64_t privs_keep, privs_keep_bounding;
static volatile int privs_drop_bounding;
static volatile int privs_last_cap;

// privs_apply makes the calling thread's credentials the target ones. It
// runs in a signal handler: raw system calls only, errno preserved.
static void privs_apply(void) {
	int saved = errno;
	uint64_t keep = privs_keep;
	if (privs_drop_bounding) {
		for (int c = 0; c <= privs_last_cap; c++) {
			if (!(privs_keep_bounding & ((uint64_t)1 << c))) {
				prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
			}
		}
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	syscall(SYS_capset, &hdr, data);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	errno = saved;
}

static void privs_handler(int sig, siginfo_t *info, void *uc) {
	(void)sig; (void)info; (void)uc;
	privs_apply();
}

// privs_arm sets the target and installs the handler. SA_ONSTACK because Go
// threads run signal handlers on their alternate signal stack; SA_RESTART
// so that C code (libpcap) sees as few EINTRs as possible.
static int privs_arm(int sig, uint64_t keep, uint64_t keep_bounding, int drop_bounding, int last_cap) {
	privs_keep = keep;
	privs_keep_bounding = keep_bounding;
	privs_drop_bounding = drop_bounding;
	privs_last_cap = last_cap;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = privs_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0) {
		return errno;
	}
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// restrictSignal is the signal every thread runs the change in: 34,
// glibc's SIGRTMIN (glibc keeps 32 and 33 for itself), which nothing else
// in xdpscan uses. It must be a signal no thread blocks: Go's runtime
// blocks most signals on threads it parks for good (a thread whose locked
// goroutine exited, the main thread included), but never 32, 33 and 34,
// which it marks "unblock" for libc's own all-thread calls (34 is musl's
// synccall, which does what Restrict does).
const restrictSignal = 34

var restrictMu sync.Mutex

// Restrict leaves every thread of the process with exactly keep (those of
// keep it holds) as its effective and permitted sets, empty inheritable and
// ambient sets, and no_new_privs set, so that nothing this process
// executes can gain a capability. When the calling thread holds
// CAP_SETPCAP (root does, a user with file or ambient capabilities
// normally does not), it also removes everything but keep from the
// bounding set; without it the bounding set stays as it is, which with
// no_new_privs set and nothing permitted grants nothing (it only limits
// what a later execve of a file-capability binary could gain, and
// no_new_privs already makes that gain nothing). It reports whether the
// bounding set was dropped.
//
// It returns once every thread's status shows the new sets, or an error
// naming a thread that still holds more after 5 seconds of trying.
func Restrict(keep Set) (droppedBounding bool, err error) {
	return restrict(keep, keep)
}

// restrict is Restrict keeping keep in the effective and permitted sets and
// keepBounding in the bounding set. The bounding set only limits what an
// execve or capset can add: a capability dropped from it stays usable
// while it is permitted, which RestrictAs needs to switch user.
func restrict(keep, keepBounding Set) (droppedBounding bool, err error) {
	restrictMu.Lock()
	defer restrictMu.Unlock()
	self, err := Current()
	if err != nil {
		return false, err
	}
	keep &= self.Prm
	dropBounding := self.Eff.Has(CapSetPCap)
	lastCap, err := lastCap()
	if err != nil {
		return false, err
	}
	if e := C.privs_arm(C.int(restrictSignal), C.uint64_t(keep), C.uint64_t(keepBounding), boolInt(dropBounding), C.int(lastCap)); e != 0 {
		return false, fmt.Errorf("drop capabilities: install the signal handler: %w", unix.Errno(e))
	}
	done := func(t Thread) bool {
		ok := t.Eff == keep && t.Prm == keep && t.Inh == 0 && t.Amb == 0 && t.NoNewPrivs
		if dropBounding {
			ok = ok && t.Bnd&^keepBounding == 0
		}
		return ok
	}
	pid := os.Getpid()
	// Seconds, not milliseconds: on a saturated machine a thread may wait
	// that long for a CPU to run its handler on.
	deadline := time.Now().Add(5 * time.Second)
	for round := 0; ; round++ {
		threads, err := Threads(0)
		if err != nil {
			return false, fmt.Errorf("drop capabilities: %w", err)
		}
		var left []Thread
		for _, t := range threads {
			if done(t) {
				continue
			}
			left = append(left, t)
			// ESRCH: the thread exited since the listing; the next round
			// no longer sees it.
			if err := unix.Tgkill(pid, t.TID, unix.Signal(restrictSignal)); err != nil && !errors.Is(err, unix.ESRCH) {
				return false, fmt.Errorf("drop capabilities: signal thread %d: %w", t.TID, err)
			}
		}
		if len(left) == 0 {
			return dropBounding, nil
		}
		if time.Now().After(deadline) {
			t := left[0]
			return false, fmt.Errorf("drop capabilities: thread %d of %d still holds effective %s, permitted %s, ambient %s (no_new_privs %v) "+
				"after %d rounds", t.TID, len(threads), t.Eff, t.Prm, t.Amb, t.NoNewPrivs, round+1)
		}
		// A blocked or descheduled thread takes the signal when it next
		// runs: give it the time to, then check again.
		time.Sleep(time.Duration(round+1) * 200 * time.Microsecond)
	}
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// lastCap is the highest capability this kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read /proc/sys/kernel/cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("/proc/sys/kernel/cap_last_cap: %q is not a capability number", b)
	}
	return n, nil
}
