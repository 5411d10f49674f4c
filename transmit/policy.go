package transmit

import "github.com/xdpscan/xdpscan/loader"

// MinBatch is the fewest probes a send carries: half a millisecond's worth
// at the rate (at 100,000/s, 50 probes a call), 1 at rates below 2,000/s,
// at most batchMax. Either transmitter pays a fixed cost per call: a
// BPF_PROG_RUN call ~12 us however few frames it carries; for the socket
// path the limiter's wakeup (a timer, a park, the scheduler's epoll_pwait,
// on this VM tens of microseconds each) came on top of the sendmmsg call
// of 1-3 frames: at 50,000/s, sending each probe as soon as it was due
// cost 1.41-1.45 CPU-s per scan of 262,144 probes (24% of it in the
// scheduler's idle loop, perf) against 1.11-1.18 in half-millisecond
// batches (3 interleaved runs each, kernel target, every pair found). The
// rate stays exact over any interval longer than a batch; at each tool's
// maximum every batch is full anyway.
func MinBatch(rate float64, batchMax int) int {
	n := rate * 0.0005
	if n >= float64(batchMax) { // in floats: int(+Inf) is no number
		return batchMax
	}
	return max(1, int(n))
}

// Slots is the scan program's transmitter batch: none unless --tx xdp.
func Slots(mode Mode, relay bool, relayCPU int) uint32 {
	if mode == ModeXDP {
		return uint32(XDPBatchFor(Relay(mode, relay, relayCPU)))
	}
	return 0
}

// Relay is the transmitter's relay, if --tx-relay-cpu asked for one.
func Relay(mode Mode, relay bool, relayCPU int) *loader.SendRelay {
	if mode != ModeXDP || !relay {
		return nil
	}
	return &loader.SendRelay{CPU: uint32(relayCPU)}
}
