package capture

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/xdpscan/xdpscan/loader"
)

// RingsMode is how a capture's records are spread over ring buffers
// (--rings).
type RingsMode string

const (
	// RingsAuto: one ring per receiving CPU where at least
	// autoPerCPUMin CPUs receive, else the one shared ring.
	RingsAuto RingsMode = "auto"
	// RingsShared: one ring, every CPU's records in it.
	RingsShared RingsMode = "shared"
	// RingsPerCPU: one ring per receiving CPU, even if only one.
	RingsPerCPU RingsMode = "per-cpu"
)

// ParseRingsMode reads --rings.
func ParseRingsMode(s string) (RingsMode, error) {
	switch m := RingsMode(s); m {
	case RingsAuto, RingsShared, RingsPerCPU:
		return m, nil
	}
	return "", fmt.Errorf("--rings %q: use auto, shared or per-cpu", s)
}

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
	Mode RingsMode `json:"mode"`
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

// sysRoot is where /sys and /proc are read from (tests point it elsewhere).
var sysRoot = "/"

// receivingCPUs are the CPUs on which an interface's received packets can
// meet XDP: its interrupts' CPUs and its receive queues' RPS CPUs; on a
// device without interrupts of its own (veth: the sender's CPU runs the
// receive) or with threaded NAPI, every online CPU.
func receivingCPUs(iface string) ([]int, string, error) {
	online, err := readCPUList(filepath.Join(sysRoot, "sys/devices/system/cpu/online"))
	if err != nil {
		return nil, "", fmt.Errorf("read online CPUs: %w", err)
	}
	dev := filepath.Join(sysRoot, "sys/class/net", iface)
	if b, err := os.ReadFile(filepath.Join(dev, "threaded")); err == nil && strings.TrimSpace(string(b)) == "1" {
		return online, "threaded NAPI: any online CPU", nil
	}
	set := map[int]bool{}
	irqs, _ := filepath.Glob(filepath.Join(dev, "device/msi_irqs/*"))
	if len(irqs) == 0 {
		irqs, _ = filepath.Glob(filepath.Join(dev, "device/../msi_irqs/*"))
	}
	for _, p := range irqs {
		cpus, err := readCPUList(filepath.Join(sysRoot, "proc/irq", filepath.Base(p), "effective_affinity_list"))
		if err != nil {
			continue
		}
		for _, c := range cpus {
			set[c] = true
		}
	}
	why := "interrupt CPUs"
	if len(set) == 0 {
		if len(irqs) > 0 {
			return online, "interrupt affinity unreadable: any online CPU", nil
		}
		return online, "no interrupts of its own (virtual device): any online CPU", nil
	}
	queues, _ := filepath.Glob(filepath.Join(dev, "queues/rx-*/rps_cpus"))
	for _, q := range queues {
		b, err := os.ReadFile(q)
		if err != nil {
			continue
		}
		for _, c := range cpuMask(strings.TrimSpace(string(b))) {
			set[c] = true
			why = "interrupt and RPS CPUs"
		}
	}
	var out []int
	for _, c := range online {
		if set[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return online, "interrupt CPUs offline: any online CPU", nil
	}
	return out, why, nil
}

// planRings chooses the rings for a capture on ifaces.
func planRings(mode RingsMode, ifaces []string) (loader.RingPlan, RingChoice, error) {
	ch := RingChoice{Mode: mode, Rings: 1}
	set := map[int]bool{}
	var whys []string
	for _, ifc := range ifaces {
		cpus, why, err := receivingCPUs(ifc)
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
	if mode == RingsShared || (mode == RingsAuto && n < autoPerCPUMin) {
		return loader.RingPlan{}, ch, nil
	}
	var p loader.RingPlan
	for _, c := range ch.ReceivingCPUs {
		if c < loader.MaxCPURings { // the rest write into the shared ring
			p.CPUs = append(p.CPUs, []int{c})
		}
	}
	p.Bytes = loader.RingBytes
	for len(p.CPUs)*int(p.Bytes) > maxRingTotal && p.Bytes > minCPURing {
		p.Bytes /= 2
	}
	ch.Rings, ch.RingBytes = 1+len(p.CPUs), p.Bytes
	return p, ch, nil
}

// readCPUList reads a list like "0-3,8,10-11".
func readCPUList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("CPU list %q: %w", s, err)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// cpuMask reads a hex CPU mask like "00000000,00000003".
func cpuMask(s string) []int {
	var out []int
	words := strings.Split(s, ",")
	for i := range words {
		w, err := strconv.ParseUint(words[len(words)-1-i], 16, 32)
		if err != nil {
			return nil
		}
		for bit := 0; bit < 32; bit++ {
			if w&(1<<bit) != 0 {
				out = append(out, 32*i+bit)
			}
		}
	}
	return out
}
