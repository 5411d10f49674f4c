package scan

import (
	"context"
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
