package transmit

import "github.com/xdpscan/xdpscan/loader"

// MinBatch is the fewest probes a send carries. A BPF_PROG_RUN call costs
// ~12 us however few frames it carries, so --tx xdp sends at most one
// batch per half millisecond (at 100,000/s, 50 probes a call); the socket
// path sends each probe as soon as it is due.
func MinBatch(mode Mode, rate float64, batchMax int) int {
	if mode != ModeXDP {
		return 1
	}
	return min(batchMax, max(1, int(rate*0.0005)))
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
