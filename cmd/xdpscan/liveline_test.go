package main

import (
	"errors"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/loader"
)

// TestLiveCountersShowsGrowth: each line gets what the counters grew by
// since the line before, not their totals, and a failed read ends the
// lines with its error.
func TestLiveCountersShowsGrowth(t *testing.T) {
	totals := []uint64{10, 25, 25, 100}
	reads := 0
	read := func() (loader.Counters, error) {
		if reads == len(totals) {
			return loader.Counters{}, errors.New("map gone")
		}
		reads++
		return loader.Counters{Packets: totals[reads-1], Matched: 2 * totals[reads-1]}, nil
	}
	var got []uint64
	err := liveCounters(make(chan struct{}), time.Millisecond, read, func(g loader.Counters, elapsed time.Duration) {
		if g.Matched != 2*g.Packets {
			t.Errorf("growth %+v: matched is not the growth of matched", g)
		}
		if elapsed <= 0 {
			t.Errorf("elapsed %v", elapsed)
		}
		got = append(got, g.Packets)
	})
	if err == nil || err.Error() != "map gone" {
		t.Fatalf("error %v, want the read's", err)
	}
	want := []uint64{10, 15, 0, 75}
	if len(got) != len(want) {
		t.Fatalf("lines %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("lines %v, want %v", got, want)
		}
	}
}

func TestLiveCountersStops(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	err := liveCounters(stop, time.Hour, func() (loader.Counters, error) {
		t.Fatal("read after stop")
		return loader.Counters{}, nil
	}, func(loader.Counters, time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
}
