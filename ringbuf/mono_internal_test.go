package ringbuf

import (
	"testing"

	"golang.org/x/sys/unix"
)

// monoNow reads CLOCK_MONOTONIC (the records' clock) without a system
// call: never ahead of the kernel's reading, and not far behind.
func TestMonoNowFollowsClockMonotonic(t *testing.T) {
	for i := 0; i < 1000; i++ {
		var before, after unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &before)
		now := monoNow()
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &after)
		// Behind by at most the base's read gap; a descheduled test can
		// stretch after - before, not the lag.
		if now > after.Nano() {
			t.Fatalf("monoNow %d is ahead of CLOCK_MONOTONIC %d", now, after.Nano())
		}
		if lag := before.Nano() - now; lag > 1_000_000 {
			t.Fatalf("monoNow is %d ns behind CLOCK_MONOTONIC: want under 1 ms", lag)
		}
	}
}
