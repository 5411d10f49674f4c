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

// Capture is the loaded capture program, with the filter built from the
// expression inside it, and its maps.
type Capture struct {
	Objects bpf.CaptureObjects
}

// filterFunction is the C function whose body is the translated filter.
const filterFunction = "capture_filter"

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
	// The filter returns its result to the C code, which counts and
	// captures: no tail call, no trip through a map.
	body, err := filter.Translate(cfg.Filter, asm.Instructions{asm.Return()})
	if err != nil {
		return nil, fmt.Errorf("translate filter: %w", err)
	}
	prog := spec.Programs["xdpscan_capture"]
	if prog.Instructions, err = replaceFunction(prog.Instructions, filterFunction, body); err != nil {
		return nil, fmt.Errorf("install filter: %w", err)
	}
	c := &Capture{}
	if err := spec.LoadAndAssign(&c.Objects, nil); err != nil {
		return nil, loadError("capture program", err)
	}
	return c, nil
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
