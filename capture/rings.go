package capture

import (
	"slices"
	"strings"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// autoPerCPUMin is the fewest receiving CPUs for which --rings auto
// chooses a ring per CPU. Measured here (docs/bench/cores.md), per-CPU
// rings cut the producers' cost per record with two CPUs producing
// (BPF_PROG_RUN, -s 128: 320-495 ns shared, 146-190 ns per-CPU) and,
// merged in place, cost the reader 1.0-1.2x what one ring does (medians
// of per-round ratios on a 1M-frame flood from two senders, 4-9
// interleaved rounds on a busy machine), and the flood was not reliably
// faster (per-round medians 0.89-1.14x): on 2 CPUs per-CPU rings do not
// win. One reader writes 2.2-4M records/s from either; the shared ring's
// lock lets 2 producers move 4.0-6.2M/s here and 16
// move 2.6M/s in the kernel's ringbuf benchmark, so it becomes the limit
// somewhere between about 4 and 16 CPUs. 16 is the conservative end: an
// extrapolation, not a measurement; --rings per-cpu chooses the rings on
// any host.
const autoPerCPUMin = 16

// maxRingTotal caps the per-CPU rings' memory: each ring gets
// loader.RingBytes (16 MiB, what one shared ring has) up to 4 rings, and
// an equal share of 64 MiB past that, at least minCPURing.
const (
	maxRingTotal = 64 << 20
	minCPURing   = 1 << 20
)

// RingChoice is what a capture chose and why (--stats-json "rings").
type RingChoice struct {
	Mode loader.RingsMode `json:"mode"`
	// ReceivingCPUs are the CPUs that can run the capture's XDP program,
	// and Why says where that came from.
	ReceivingCPUs []int  `json:"receiving_cpus"`
	Why           string `json:"why"`
	// Rings is the number of rings read: the shared one plus one per
	// receiving CPU (1: the shared ring only).
	Rings     int    `json:"rings"`
	RingBytes uint32 `json:"ring_bytes"` // each per-CPU ring's size
	// The merge of the rings in timestamp order.
	WindowNs  int64  `json:"reorder_window_ns"`
	Late      uint64 `json:"late"`        // records later than the window: written out of order, not lost
	MaxLateNs int64  `json:"max_late_ns"` // the latest of them, behind the written stream
	MaxHeld   int    `json:"max_held"`    // most records waiting for the merge at once
	// RecordsPerRing: records read from each ring (the shared one first);
	// RingLostPerCPU: reserve failures on each CPU (index = CPU id).
	RecordsPerRing []uint64 `json:"records_per_ring,omitempty"`
	RingLostPerCPU []uint64 `json:"ring_lost_per_cpu,omitempty"`
}

// planRings chooses the rings for a capture on ifaces.
func planRings(mode loader.RingsMode, ifaces []string) (loader.RingPlan, RingChoice, error) {
	ch := RingChoice{Mode: mode, Rings: 1}
	set := map[int]bool{}
	var whys []string
	for _, ifc := range ifaces {
		cpus, why, err := netdev.ReceivingCPUs(ifc)
		if err != nil {
			return loader.RingPlan{}, ch, err
		}
		whys = append(whys, ifc+": "+why)
		for _, c := range cpus {
			set[c] = true
		}
	}
	for c := range set {
		ch.ReceivingCPUs = append(ch.ReceivingCPUs, c)
	}
	slices.Sort(ch.ReceivingCPUs)
	ch.Why = strings.Join(whys, "; ")
	n := len(ch.ReceivingCPUs)
	if mode == loader.RingsShared || (mode == loader.RingsAuto && n < autoPerCPUMin) {
		return loader.RingPlan{}, ch, nil
	}
	p := loader.PlanPerCPU(ch.ReceivingCPUs, loader.RingBytes, maxRingTotal, minCPURing)
	ch.Rings, ch.RingBytes = 1+len(p.CPUs), p.Bytes
	return p, ch, nil
}
