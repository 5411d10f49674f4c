package scan

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/transmit"
)

func TestRateLimiterIsExactOnAverage(t *testing.T) {
	const rate = 20000
	rl := NewRateLimiter(rate)
	ctx := context.Background()
	var sent int
	start := time.Now()
	for sent < 4000 {
		sent += rl.Next(ctx, transmit.SocketBatch)
	}
	// 4000 probes at 20k/s is 200ms: never early by more than a batch.
	if el := time.Since(start); el < time.Duration(float64(sent-transmit.SocketBatch)/rate*float64(time.Second)) {
		t.Fatalf("sent %d in %v: faster than %d/s", sent, el, rate)
	}
}

// TestRateLimiterMinBatch: with MinBatch, every batch carries at least that
// many probes (the limiter waits for them to fall due) and the average rate
// still holds.
func TestRateLimiterMinBatch(t *testing.T) {
	const rate, minBatch = 20000, 10
	rl := NewRateLimiter(rate)
	rl.MinBatch = minBatch
	var sent int
	start := time.Now()
	for sent < 2000 {
		n := rl.Next(context.Background(), 256)
		if n < minBatch {
			t.Fatalf("batch of %d, want at least %d", n, minBatch)
		}
		sent += n
	}
	if el := time.Since(start); el < time.Duration(float64(sent-256)/rate*float64(time.Second)) {
		t.Fatalf("sent %d in %v: faster than %d/s", sent, el, rate)
	}
}

// TestRateLimiterSlowRateEndsOnCancel: at the slowest rate the next probe
// is an hour away; a cancel must end the wait at once (a plain sleep once
// kept XDP attached until SIGKILL), and at MinRate with the largest batch
// the wait must not overflow into a busy spin.
func TestRateLimiterSlowRateEndsOnCancel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rate     float64
		minBatch int
	}{
		{"one a thousand seconds", 0.001, 1},
		{"one an hour", MinRate, 1},
		{"one an hour, full batches", MinRate, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := NewRateLimiter(tc.rate)
			rl.MinBatch = tc.minBatch
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.minBatch == 1 {
				if n := rl.Next(ctx, 256); n != 1 {
					t.Fatalf("first call: %d probes due, want 1", n)
				}
			}
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			n := rl.Next(ctx, 256)
			if el := time.Since(start); n != 0 || el > time.Second || el < 90*time.Millisecond {
				t.Fatalf("Next = %d after %v; want 0 at the cancel (100ms)", n, el)
			}
		})
	}
}

func TestValidateRefusesRatesBelowOneAnHour(t *testing.T) {
	for _, rate := range []float64{0, -1, MinRate / 2, 1e-12, math.NaN(), math.Inf(1)} {
		c := Config{Rate: rate}
		if err := c.validateRate(); err == nil || !strings.Contains(err.Error(), "one an hour") {
			t.Errorf("rate %v: %v, want refused", rate, err)
		}
	}
	for _, rate := range []float64{MinRate, 0.001, 1, 1e7} {
		if err := (Config{Rate: rate}).validateRate(); err != nil {
			t.Errorf("rate %v refused: %v", rate, err)
		}
	}
}
