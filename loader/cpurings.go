package loader

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bpf"
)

// MaxCPURings is the number of CPU slots in the capture and scan
// programs' cpu_rings (bpf/include/cpuring.h): CPUs with higher ids use
// the shared ring.
const MaxCPURings = 256

// RingPlan is how a capture or scan program's records are spread over ring
// buffers: each ring and the CPUs whose XDP runs write into it. The zero
// plan is one ring shared by every CPU (the `events` map).
type RingPlan struct {
	// CPUs lists, ring by ring, the CPUs that write into it. A CPU in no
	// list writes into the shared ring.
	CPUs [][]int
	// Bytes is each ring's size: a power of two, a multiple of the page
	// size.
	Bytes uint32
}

// RingsMode is how a program's records are spread over ring buffers
// (capture's and scan's --rings).
type RingsMode string

const (
	// RingsAuto: per-CPU rings where the caller's measurements say they
	// pay, else the one shared ring.
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

// PlanPerCPU gives each of cpus below MaxCPURings a ring of its own (the
// rest write into the shared ring), each ringBytes, halved while the
// rings together pass total, down to minBytes.
func PlanPerCPU(cpus []int, ringBytes, total, minBytes uint32) RingPlan {
	var p RingPlan
	for _, c := range cpus {
		if c >= 0 && c < MaxCPURings {
			p.CPUs = append(p.CPUs, []int{c})
		}
	}
	p.Bytes = ringBytes
	for uint64(len(p.CPUs))*uint64(p.Bytes) > uint64(total) && p.Bytes > minBytes {
		p.Bytes /= 2
	}
	return p
}

// Rings is the number of per-CPU rings (0: the shared ring only).
func (p RingPlan) Rings() int { return len(p.CPUs) }

func (p RingPlan) check() error {
	if p.Rings() == 0 {
		return nil
	}
	if p.Bytes == 0 || p.Bytes&(p.Bytes-1) != 0 {
		return fmt.Errorf("ring plan: ring size %d is not a power of two", p.Bytes)
	}
	seen := map[int]bool{}
	for _, cpus := range p.CPUs {
		if len(cpus) == 0 {
			return fmt.Errorf("ring plan: a ring with no CPU")
		}
		for _, c := range cpus {
			if c < 0 || c >= MaxCPURings {
				return fmt.Errorf("ring plan: CPU %d: the program has slots for CPUs 0-%d", c, MaxCPURings-1)
			}
			if seen[c] {
				return fmt.Errorf("ring plan: CPU %d given two rings", c)
			}
			seen[c] = true
		}
	}
	return nil
}

// configureRings sets the spec for the plan: the flag that makes the
// program look its CPU's ring up, and the rings' size.
func configureRings(spec *ebpf.CollectionSpec, p RingPlan) error {
	if err := p.check(); err != nil {
		return err
	}
	if p.Rings() == 0 {
		return nil
	}
	if err := setVar(spec, "per_cpu_rings", uint8(1)); err != nil {
		return err
	}
	spec.Maps["cpu_rings"].InnerMap.MaxEntries = p.Bytes
	return nil
}

// fillRings creates the plan's rings and puts each in its CPUs' slots of
// outer (cpu_rings).
func fillRings(outer *ebpf.Map, inner *ebpf.MapSpec, p RingPlan) ([]*ebpf.Map, error) {
	var rings []*ebpf.Map
	fail := func(err error) ([]*ebpf.Map, error) {
		for _, r := range rings {
			r.Close()
		}
		return nil, err
	}
	for i, cpus := range p.CPUs {
		spec := inner.Copy()
		spec.Name = fmt.Sprintf("cpu_ring_%d", i)
		spec.MaxEntries = p.Bytes
		r, err := ebpf.NewMap(spec)
		if err != nil {
			return fail(fmt.Errorf("create ring %d of %d (%d bytes): %w", i+1, p.Rings(), p.Bytes, err))
		}
		rings = append(rings, r)
		for _, c := range cpus {
			if err := outer.Put(uint32(c), r); err != nil {
				return fail(fmt.Errorf("put ring %d in CPU %d's slot: %w", i, c, err))
			}
		}
	}
	return rings, nil
}

// RingLostPerCPU reads the per-CPU counters' ring reserve failures, CPU by
// CPU (index = CPU id).
func RingLostPerCPU(m *ebpf.Map) ([]uint64, error) {
	var perCPU []counterBlock
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := make([]uint64, len(perCPU))
	for i, b := range perCPU {
		out[i] = b[bpf.ScanCounterIdxCOUNTER_RING_LOST]
	}
	return out, nil
}

// PacketsPerCPU reads how many packets the program saw on each CPU (index
// = CPU id), the frame shapes' counts included.
func PacketsPerCPU(m *ebpf.Map) ([]uint64, error) {
	var perCPU []counterBlock
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := make([]uint64, len(perCPU))
	for i, b := range perCPU {
		out[i] = b[bpf.ScanCounterIdxCOUNTER_PACKETS]
		for _, s := range frameShapes {
			out[i] += b[s.idx]
		}
	}
	return out, nil
}
