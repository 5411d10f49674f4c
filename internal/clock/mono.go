// Package clock holds the time helpers the data paths share: the kernel's
// monotonic clock (bpf_ktime_get_ns) as wall-clock time, and a sleep that
// a context cuts short.
package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Mono converts bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall-clock time.
type Mono struct{ offset time.Duration }

// NewMono reads the offset between the two clocks now.
func NewMono() Mono {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return Mono{offset: time.Duration(time.Now().UnixNano() - ts.Nano())}
}

// Wall is the wall-clock time of a kernel timestamp.
func (m Mono) Wall(ktime uint64) time.Time { return time.Unix(0, m.WallNs(ktime)) }

// WallNs is Wall in nanoseconds since the Unix epoch.
func (m Mono) WallNs(ktime uint64) int64 { return int64(ktime) + int64(m.offset) }
