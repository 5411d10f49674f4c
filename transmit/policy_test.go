package transmit

import (
	"math"
	"testing"
)

func TestMinBatch(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		batchMax int
		want     int
	}{
		{"slow: every probe when due", 1000, SocketBatch, 1},
		{"below one probe an hour's half millisecond", 1.0 / 3600, SocketBatch, 1},
		{"50,000/s: half a millisecond's 25", 50000, SocketBatch, 25},
		{"100,000/s: 50", 100000, SocketBatch, 50},
		{"faster than a batch per half millisecond: full batches", 1e6, SocketBatch, SocketBatch},
		{"--rate max", 1e8, 1024, 1024},
		{"infinite", math.Inf(1), SocketBatch, SocketBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MinBatch(tt.rate, tt.batchMax); got != tt.want {
				t.Fatalf("MinBatch(%v, %d) = %d, want %d", tt.rate, tt.batchMax, got, tt.want)
			}
		})
	}
}
