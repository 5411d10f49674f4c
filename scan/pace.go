package scan

import (
	"context"
	"time"
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
		wait := time.Duration((float64(r.sent+uint64(max(r.MinBatch, 1))-1)/r.rate - elapsed) * float64(time.Second))
		if wait > 0 {
			time.Sleep(max(wait, 20*time.Microsecond))
		}
	}
}
