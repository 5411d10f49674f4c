package scan

import (
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// autoPerCPUMin is the fewest CPUs receiving replies for which --rings
// auto gives each its own ring. A scan's events need no order between
// rings (each is one pair's answer), so unlike a capture's records they
// are read without a merge, and the reader costs what one ring's does;
// what the rings save is the shared ring's reserve lock, taken by every
// reply on every CPU. Measured (docs/bench/cores.md, session 15): `--tx
// xdp --senders 2` on `testbed --queues 2`, every address answering, the
// scan's replies on both CPUs: 1.29-1.39M probes/s with a ring per CPU
// against 1.06-1.13M with one shared ring, 4 alternated rounds, exact in
// every run.
const autoPerCPUMin = 2

// RingChoice is what a scan chose and why (--stats-json "rings").
type RingChoice struct {
	Mode loader.RingsMode `json:"mode"`
	// ReceivingCPUs are the CPUs on which replies can meet the scan
	// program, and Why says where that came from.
	ReceivingCPUs []int  `json:"receiving_cpus"`
	Why           string `json:"why"`
	// Rings is the number of rings read: the shared one plus one per
	// receiving CPU (1: the shared ring only); RingBytes each per-CPU
	// ring's size.
	Rings     int    `json:"rings"`
	RingBytes uint32 `json:"ring_bytes,omitempty"`
}

// ringPlan chooses the rings of the scan's events on cfg's interface: the
// same memory as one shared ring (loader.RingBytes) split between the
// per-CPU ones, each at least minCPURing, the shared one then kept for
// CPUs beyond loader.MaxCPURings at its least.
func (cfg Config) ringPlan() (loader.RingPlan, RingChoice, error) {
	mode := cfg.Rings
	if mode == "" {
		mode = loader.RingsAuto
	}
	ch := RingChoice{Mode: mode, Rings: 1}
	cpus, why, err := netdev.ReceivingCPUs(cfg.iface())
	if err != nil {
		return loader.RingPlan{}, ch, err
	}
	ch.ReceivingCPUs, ch.Why = cpus, why
	if mode == loader.RingsShared || (mode == loader.RingsAuto && len(cpus) < autoPerCPUMin) {
		return loader.RingPlan{}, ch, nil
	}
	p := loader.PlanPerCPU(cpus, loader.RingBytes, loader.RingBytes, minCPURing)
	if p.Rings() == 0 {
		return p, ch, nil
	}
	ch.Rings, ch.RingBytes = 1+p.Rings(), p.Bytes
	return p, ch, nil
}

// minCPURing is the smallest per-CPU ring: 14,500 events, 10 ms of
// replies at 1.45M/s on one CPU, twice the reader's 5 ms poll.
const minCPURing = 1 << 20

// sharedRingBeside is the shared ring's size when every receiving CPU
// has a ring of its own: only CPUs the plan left out write there. The one
// wakeup threshold the program has is set for the per-CPU rings (a
// quarter of one) and exceeds it, so the reader finds its rare records on
// its own poll (ringbuf.Options.PollInterval) rather than by a wakeup.
const sharedRingBeside = 1 << 20
