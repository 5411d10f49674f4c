package bench

import (
	"errors"
	"testing"
	"time"
)

// waitSettled returns as soon as the count is complete, waits while it
// grows, and gives up on a count that stalls or fails.
func TestWaitSettled(t *testing.T) {
	tests := []struct {
		name       string
		counts     []uint64 // one per poll; the last repeats
		fail       bool
		want       uint64
		polls      int // polls made, at least
		atMostSecs float64
	}{
		{name: "complete at once", counts: []uint64{100}, want: 100, polls: 1, atMostSecs: 0.1},
		{name: "grows, then complete", counts: []uint64{10, 40, 80, 100}, want: 100, polls: 4, atMostSecs: 0.5},
		{name: "stalls short of it: frames lost", counts: []uint64{10, 90}, want: 100, polls: 2 + 5, atMostSecs: 0.5},
		{name: "unreadable", fail: true, want: 100, polls: 1, atMostSecs: 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			polls := 0
			start := time.Now()
			waitSettled(func() (uint64, error) {
				polls++
				if tc.fail {
					return 0, errors.New("nft: no such table")
				}
				return tc.counts[min(polls, len(tc.counts))-1], nil
			}, tc.want, 100*time.Millisecond, 2*time.Second)
			took := time.Since(start).Seconds()
			if polls < tc.polls || took > tc.atMostSecs {
				t.Fatalf("%d polls in %.2fs; want at least %d, at most %.1fs", polls, took, tc.polls, tc.atMostSecs)
			}
		})
	}
}
