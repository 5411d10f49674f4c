package bench

import (
	"context"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// FloodSenders is Flood from n threads at once, each on its own CPU of the
// process's affinity (and so, on AF_PACKET, its own TX queue: on a veth
// with n queues, its own RX queue at the peer), each sending its exact
// share of o.Count on a socket of its own. The result adds up the
// threads': Sent is the total, ElapsedS the wall time from the first
// thread's start to the last one's end.
func FloodSenders(ctx context.Context, o FloodOptions, n int) (FloodResult, error) {
	if n <= 1 {
		return Flood(ctx, o)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return FloodResult{}, err
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	results := make([]FloodResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; k < n; k++ {
		share := o
		share.Count = o.Count / uint64(n)
		if uint64(k) < o.Count%uint64(n) {
			share.Count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var one unix.CPUSet
			one.Set(cpus[k%len(cpus)])
			_ = unix.SchedSetaffinity(0, &one) // unpinned still floods, only less evenly
			if share.Count > 0 {
				results[k], errs[k] = Flood(ctx, share)
			}
		}()
	}
	wg.Wait()
	var r FloodResult
	for k := range results {
		if errs[k] != nil {
			return r, errs[k]
		}
		r.Sent += results[k].Sent
	}
	r.ElapsedS = time.Since(start).Seconds()
	if r.ElapsedS > 0 {
		r.PPS = float64(r.Sent) / r.ElapsedS
	}
	return r, nil
}
