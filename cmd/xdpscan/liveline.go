package main

import (
	"time"

	"github.com/xdpscan/xdpscan/loader"
)

// liveCounters is the once-an-interval counter line of capture
// (--count-only) and monitor: every interval it reads the XDP counters and
// hands show their growth since the last read and the time that covers,
// until stop is closed (nil) or a read fails (its error).
func liveCounters(stop <-chan struct{}, interval time.Duration, read func() (loader.Counters, error),
	show func(growth loader.Counters, elapsed time.Duration)) error {
	// last before the ticker: a tick's time is its schedule (creation +
	// interval), earlier than a time.Now() taken after a slow creation on
	// a busy machine, which gave a negative first elapsed.
	last := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	var prev loader.Counters
	for {
		select {
		case <-stop:
			return nil
		case now := <-t.C:
			c, err := read()
			if err != nil {
				return err
			}
			show(c.Sub(prev), now.Sub(last))
			prev, last = c, now
		}
	}
}
