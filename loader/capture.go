package loader

import (
	"errors"
	"fmt"
	"slices"

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

// Capture is the loaded capture program, with the filter built from the
// expression inside it, and its maps.
type Capture struct {
	Objects bpf.CaptureObjects
}

// shapedFilters are the C code's calls of the filter: capture_filter for
// any frame, and one for each frame shape count_frame classifies inline
// (bpf/include/counters.h), where the filter is specialized for what
// count_frame has checked. A shape must claim no more than the C code
// checks; TestCaptureFiltersEveryShape holds them to it, frame by frame.
var shapedFilters = []struct {
	function string
	shape    filter.Shape
}{
	{"capture_filter", filter.Shape{}},
	{"capture_filter_ipv4_udp", filter.IPv4Shape(filter.UDP)},
	{"capture_filter_ipv4_tcp", filter.IPv4Shape(filter.TCP)},
	{"capture_filter_ipv6_udp", filter.IPv6Shape(filter.UDP)},
	{"capture_filter_ipv6_tcp", filter.IPv6Shape(filter.TCP)},
}

// LoadCapture loads the capture program with the filter in it.
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
	prog := spec.Programs["xdpscan_capture"]
	if prog.Instructions, err = installFilter(prog.Instructions, cfg.Filter); err != nil {
		return nil, err
	}
	c := &Capture{}
	if err := spec.LoadAndAssign(&c.Objects, nil); err != nil {
		return nil, loadError("capture program", err)
	}
	return c, nil
}

// installFilter puts the translated filter where the C code calls it,
// specialized for each call's frame shape, to return its result to the C
// code (counts and captures): no tail call, no trip through a map. The
// filter's code takes the call's place; only a filter that uses scratch
// memory, which inline code has no stack for, or needs a helper call (a
// packet offset computed at run time, the packet length: see
// filter.ErrNeedsHelper), becomes the function's body instead. The call costs more than the filter on a flooded link: 30% of
// the program's samples were at its return (perf, count-only on the
// testbed's flood), ~4 ns a packet.
func installFilter(insns asm.Instructions, raw []cbpf.RawInstruction) (asm.Instructions, error) {
	if len(raw) > filter.MaxInstructions {
		return nil, fmt.Errorf("install filter: %d classic BPF instructions: at most %d fit in the capture program; capture with a shorter filter",
			len(raw), filter.MaxInstructions)
	}
	var inline []namedCode
	for _, f := range shapedFilters {
		body, err := filter.TranslateInline(raw, f.shape)
		if err == nil {
			inline = append(inline, namedCode{f.function, ownLabels(body, f.function)})
			continue
		}
		if !errors.Is(err, filter.ErrUsesScratch) && !errors.Is(err, filter.ErrNeedsHelper) {
			return nil, fmt.Errorf("translate filter: %w", err)
		}
		if body, err = filter.Translate(raw, f.shape, asm.Instructions{asm.Return()}); err != nil {
			return nil, fmt.Errorf("translate filter: %w", err)
		}
		if insns, err = replaceFunction(insns, f.function, ownLabels(body, f.function)); err != nil {
			return nil, fmt.Errorf("install filter: %w", err)
		}
	}
	insns, err := inlineCalls(insns, inline)
	if err != nil {
		return nil, fmt.Errorf("install filter: %w", err)
	}
	// Five copies of a long filter can put a jump (the C code's around
	// them, or the filter's own) past a 16-bit offset.
	if insns, err = filter.LongJumps(insns); err != nil {
		return nil, fmt.Errorf("install filter: the filter is too long for the capture program: %w; capture with a shorter filter", err)
	}
	return insns, nil
}

// namedCode is the code to put in place of the calls of a function.
type namedCode struct {
	function string
	body     asm.Instructions
}

// ownLabels gives the labels of one copy of the filter (jump targets,
// which must be unique in the program) the suffix of the function it
// stands for.
func ownLabels(body asm.Instructions, function string) asm.Instructions {
	out := slices.Clone(body)
	for i, ins := range out {
		if sym := ins.Symbol(); sym != "" {
			out[i] = ins.WithSymbol(sym + "_" + function)
		}
		if ref := out[i].Reference(); ref != "" && out[i].OpCode.Class().IsJump() {
			out[i] = out[i].WithReference(ref + "_" + function)
		}
	}
	return out
}

// inlineCalls returns insns with the one call of each BPF function named
// replaced by its body, which must leave what the call would return in R0
// and touch only what a call may clobber (R0-R5), and with the functions
// removed. Clang's jumps are relative, so every jump first gets its target
// by symbol, which keeps it right however many instructions the bodies
// add.
func inlineCalls(insns asm.Instructions, code []namedCode) (asm.Instructions, error) {
	var err error
	for _, c := range code {
		if len(c.body) == 0 {
			return nil, fmt.Errorf("empty body for %s", c.function)
		}
		if insns, err = removeFunction(insns, c.function); err != nil {
			return nil, err
		}
	}
	if insns, err = jumpsBySymbol(insns); err != nil {
		return nil, err
	}
	for _, c := range code {
		call := -1
		for i := range insns {
			if insns[i].IsFunctionCall() && insns[i].Reference() == c.function {
				if call >= 0 {
					return nil, fmt.Errorf("%s is called more than once", c.function)
				}
				call = i
			}
		}
		if call < 0 {
			return nil, fmt.Errorf("no call of %s in the program", c.function)
		}
		body := slices.Clone(c.body)
		if sym := insns[call].Symbol(); sym != "" {
			if body[0].Symbol() != "" {
				return nil, fmt.Errorf("body of %s starts with its own label %q", c.function, body[0].Symbol())
			}
			body[0] = body[0].WithSymbol(sym) // a jump's target
		}
		insns = slices.Concat(insns[:call], body, insns[call+1:])
	}
	return insns, nil
}

// removeFunction returns insns without the BPF function name (from its
// symbol to the next function's).
func removeFunction(insns asm.Instructions, name string) (asm.Instructions, error) {
	start := slices.IndexFunc(insns, func(ins asm.Instruction) bool { return ins.Symbol() == name })
	if start < 0 {
		return nil, fmt.Errorf("no function %s in the program", name)
	}
	end := start + 1
	for end < len(insns) && insns[end].Symbol() == "" {
		end++
	}
	return slices.Concat(insns[:start], insns[end:]), nil
}

// jumpsBySymbol gives every jump that has only a relative offset its
// target's symbol (a new one where the target has none), so the program
// can grow or shrink between them. Call it on whole functions only: the
// new symbols sit inside them, where the next function's start can no
// longer be told by the next symbol.
func jumpsBySymbol(insns asm.Instructions) (asm.Instructions, error) {
	out := slices.Clone(insns)
	byOffset := map[asm.RawInstructionOffset]int{}
	for it := out.Iterate(); it.Next(); {
		byOffset[it.Offset] = it.Index
	}
	for it := out.Iterate(); it.Next(); {
		ins := it.Ins
		op := ins.OpCode.JumpOp()
		if !ins.OpCode.Class().IsJump() || op == asm.Call || op == asm.Exit || ins.Reference() != "" {
			continue
		}
		if op == asm.Ja && ins.OpCode.Class() == asm.Jump32Class {
			return nil, fmt.Errorf("instruction %d: a 32-bit jump (gotol), which this program never had", it.Index)
		}
		target, ok := byOffset[it.Offset+1+asm.RawInstructionOffset(ins.Offset)]
		if !ok {
			return nil, fmt.Errorf("instruction %d jumps to no instruction (offset %d)", it.Index, ins.Offset)
		}
		sym := out[target].Symbol()
		if sym == "" {
			sym = fmt.Sprintf("xdpscan_jump_target_%d", target)
			out[target] = out[target].WithSymbol(sym)
		}
		*ins = ins.WithReference(sym)
		ins.Offset = -1
	}
	return out, nil
}

// replaceFunction returns insns with the body of the BPF function name (a
// global function, which the verifier checks on its own against its BTF
// prototype) replaced. The first instruction keeps the original's metadata:
// the function's symbol, its BTF and the line info the kernel wants at
// every function's start.
func replaceFunction(insns asm.Instructions, name string, body asm.Instructions) (asm.Instructions, error) {
	start := -1
	for i, ins := range insns {
		if ins.Symbol() == name {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("no function %s in the program", name)
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("empty body for %s", name)
	}
	end := start + 1
	for end < len(insns) && insns[end].Symbol() == "" {
		end++ // a function ends where the next symbol (function) starts
	}
	if body[0].Symbol() != "" {
		return nil, fmt.Errorf("body of %s starts with its own label %q", name, body[0].Symbol())
	}
	out := make(asm.Instructions, 0, len(insns)-(end-start)+len(body))
	out = append(out, insns[:start]...)
	first := body[0]
	first.Metadata = insns[start].Metadata
	out = append(out, first)
	out = append(out, body[1:]...)
	return append(out, insns[end:]...), nil
}

// Program is the program to attach.
func (c *Capture) Program() *ebpf.Program { return c.Objects.XdpscanCapture }

// Events is the ring of capture_hdr records, each followed by cap_len bytes.
func (c *Capture) Events() *ebpf.Map { return c.Objects.Events }

// Counters sums the per-CPU counters (Matched counts filter matches).
func (c *Capture) Counters() (Counters, error) { return ReadCounters(c.Objects.Counters) }

// Close releases everything.
func (c *Capture) Close() error { return c.Objects.Close() }
