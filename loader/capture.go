package loader

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
)

// CaptureConfig configures the capture programs.
type CaptureConfig struct {
	// Filter is the classic BPF program (filter.Compile) run on every
	// packet; its result decides the match and caps the bytes kept.
	Filter []cbpf.RawInstruction
	// Snaplen caps the bytes kept per packet, in the kernel (at most 4096,
	// the largest linear XDP frame).
	Snaplen uint32
	// CountOnly counts matches and copies nothing.
	CountOnly bool
	// RingBytes and RingWakeupBytes as in ScanConfig.
	RingBytes, RingWakeupBytes uint32
}

// MaxSnaplen is the most bytes the capture program copies per packet.
const MaxSnaplen = 4096

// Capture is the loaded capture pipeline: the entry program to attach, the
// filter built from the expression, and the maps.
type Capture struct {
	Objects bpf.CaptureObjects
	filter  *ebpf.Program
}

// LoadCapture loads the capture programs and installs the filter.
func LoadCapture(cfg CaptureConfig) (*Capture, error) {
	if cfg.Snaplen == 0 {
		return nil, fmt.Errorf("load capture: snaplen must be at least 1")
	}
	if err := prepare(); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadCapture()
	if err != nil {
		return nil, fmt.Errorf("read embedded capture program: %w", err)
	}
	for name, value := range map[string]any{
		"count_only":        boolByte(cfg.CountOnly),
		"snaplen":           cfg.Snaplen,
		"ring_wakeup_bytes": cfg.RingWakeupBytes,
	} {
		if err := setVar(spec, name, value); err != nil {
			return nil, fmt.Errorf("configure capture: %w", err)
		}
	}
	if cfg.RingBytes != 0 {
		spec.Maps["events"].MaxEntries = cfg.RingBytes
	}
	c := &Capture{}
	if err := spec.LoadAndAssign(&c.Objects, nil); err != nil {
		return nil, loadError("capture program", err)
	}
	if err := c.install(cfg.Filter, cfg.CountOnly); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// install builds the filter program and wires the tail calls.
func (c *Capture) install(prog []cbpf.RawInstruction, countOnly bool) error {
	epilogue := asm.Instructions{
		asm.Mov.Reg(asm.R9, filter.RegResult),
		asm.StoreImm(asm.R10, -72, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -72),
		asm.LoadMapPtr(asm.R1, c.Objects.Verdict.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.StoreMem(asm.R0, 0, asm.R9, asm.Word),
		asm.Mov.Reg(asm.R1, filter.RegCtx),
		asm.LoadMapPtr(asm.R2, c.Objects.Progs.FD()),
		asm.Mov.Imm(asm.R3, 1),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS, whatever happens
		asm.Return(),
	}
	if countOnly {
		// A match only counts: done here, without the tail call back to
		// xdpscan_capture_tail and the verdict's trip through a map.
		epilogue = asm.Instructions{
			asm.JEq.Imm(filter.RegResult, 0, "pass"),
			asm.StoreImm(asm.R10, -72, int64(bpf.ScanCounterIdxCOUNTER_MATCHED), asm.Word),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -72),
			asm.LoadMapPtr(asm.R1, c.Objects.Counters.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "pass"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord), // per-CPU: no atomic needed
			asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS, whatever happens
			asm.Return(),
		}
	}
	insns, err := filter.Translate(prog, epilogue)
	if err != nil {
		return fmt.Errorf("translate filter: %w", err)
	}
	// AttachXDP as for the C programs' SEC("xdp"): the kernel refuses tail
	// calls between programs whose expected attach types differ (EINVAL,
	// with no verifier log).
	c.filter, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpscan_filter", Type: ebpf.XDP, AttachType: ebpf.AttachXDP,
		Instructions: insns, License: "Dual BSD/GPL"})
	if err != nil {
		return loadError("translated filter", err)
	}
	if err := c.Objects.Progs.Put(uint32(0), c.filter); err != nil {
		return fmt.Errorf("install filter: %w", err)
	}
	if err := c.Objects.Progs.Put(uint32(1), c.Objects.XdpscanCaptureTail); err != nil {
		return fmt.Errorf("install capture tail: %w", err)
	}
	return nil
}

// Program is the entry program to attach.
func (c *Capture) Program() *ebpf.Program { return c.Objects.XdpscanCapture }

// Events is the ring of capture_hdr records, each followed by cap_len bytes.
func (c *Capture) Events() *ebpf.Map { return c.Objects.Events }

// Counters sums the per-CPU counters (Matched counts filter matches).
func (c *Capture) Counters() (Counters, error) { return ReadCounters(c.Objects.Counters) }

// Close releases everything.
func (c *Capture) Close() error {
	if c.filter != nil {
		c.filter.Close()
	}
	return c.Objects.Close()
}
