package scan

import (
	"context"
	"time"

	"github.com/xdpscan/xdpscan/internal/clock"
)

// MinRate is the slowest --rate: one probe an hour. Slower would be a scan
// that never ends, and waits too long to compute in nanoseconds.
const MinRate = 1.0 / 3600

const (
	longWait = 50 * time.Millisecond // from here a wait ends on ctx
	maxWait  = time.Hour             // a wait is re-checked at least this often
)

// RateLimiter paces sends to an exact average rate at batch granularity:
// the k-th probe is due at start + k/rate, and a batch carries every probe
// already due (at most BatchSize), so the count matches the rate over any
// interval longer than a batch.
type RateLimiter struct {
	rate  float64
	start time.Time
	sent  uint64
	// MinBatch makes Next wait until this many probes are due (a sender
	// whose every call has a fixed cost wants fewer, fuller calls).
	MinBatch int
}

// NewRateLimiter starts the clock.
func NewRateLimiter(pps float64) *RateLimiter {
	return &RateLimiter{rate: pps, start: time.Now()}
}

// Next blocks until at least one probe is due and returns how many may be
// sent now (1 to max). It returns 0 when ctx is done.
func (r *RateLimiter) Next(ctx context.Context, maxN int) int {
	for {
		elapsed := time.Since(r.start).Seconds()
		due := uint64(elapsed*r.rate) + 1
		if due >= r.sent+uint64(max(r.MinBatch, 1)) {
			n := min(due-r.sent, uint64(maxN))
			r.sent += n
			return int(n)
		}
		if ctx.Err() != nil {
			return 0
		}
		// In float seconds first: at a tiny rate the wait in nanoseconds
		// overflows a Duration, which then reads as no wait (a busy spin).
		waitS := float64(r.sent+uint64(max(r.MinBatch, 1))-1)/r.rate - elapsed
		switch {
		case waitS <= 0:
		case waitS < longWait.Seconds():
			// A plain sleep is cheaper, and this short a one stops soon enough.
			time.Sleep(max(time.Duration(waitS*float64(time.Second)), 20*time.Microsecond))
		default:
			// A slow rate waits minutes between probes: a signal must
			// not wait with it.
			if clock.Sleep(ctx, time.Duration(min(waitS, maxWait.Seconds())*float64(time.Second))) != nil {
				return 0
			}
		}
	}
}
