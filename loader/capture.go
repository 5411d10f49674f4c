package loader

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	cbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
)

// CaptureConfig configures the capture programs.
type CaptureConfig struct {
	// Filter is the classic BPF program (filter.Compile) run on every
	// packet; its result decides the match and caps the bytes kept.
	Filter []cbpf.RawInstruction
	// Snaplen caps the bytes kept per packet, in the kernel (at most
	// MaxSnaplen).
	Snaplen uint32
	// FrameView: the filter sees every frame as it is, VLAN tags in
	// place, as a savefile filter does (filter.Compile's code); otherwise
	// it sees a tagged frame as a Linux socket filter does, with the outer
	// tag in the ancillary values (filter.CompileLive's code).
	FrameView bool
	// CountOnly counts matches and copies nothing.
	CountOnly bool
	// RingBytes and RingWakeupBytes as in ScanConfig.
	RingBytes, RingWakeupBytes uint32
	// Rings spreads the records over per-CPU rings (zero: one shared
	// ring).
	Rings RingPlan
	// VLANMetaIfindex binds the program to that interface (a
	// device-bound program: it attaches there only, in native mode) and
	// asks its driver for the outer VLAN tag it took out of each frame
	// (bpf_xdp_metadata_rx_vlan_tag, Linux 6.8), which the program puts
	// back in place while it runs the filter and copies the frame; 0
	// leaves that out (generic mode, savefiles, drivers without it).
	VLANMetaIfindex int
	// NoFrags loads the program without xdp.frags (BPF_F_XDP_HAS_FRAGS),
	// for generic mode, where the kernel gives it every frame linear.
	NoFrags bool
	// ShareRings, if set, is an earlier load whose rings (shared and
	// per-CPU) this program writes into too: one reader for several
	// interfaces.
	ShareRings *Capture
}

// MaxSnaplen is the most bytes the capture program copies per packet:
// tcpdump's largest snapshot length. The program is xdp.frags, so a frame
// larger than a page (MTU 9000) is seen and copied whole.
const MaxSnaplen = 262144

// Capture is the loaded capture program, with the filter built from the
// expression inside it, and its maps.
type Capture struct {
	Objects bpf.CaptureObjects
	// CPURings are the per-CPU rings of Config.Rings, in its order
	// (owned by the first load of a ShareRings group).
	CPURings []*ebpf.Map
	ownRings bool
	// VLANMeta: the program is bound to its interface and reads the VLAN
	// tags its driver took out of frames (CaptureConfig.VLANMetaIfindex).
	VLANMeta bool
}

// shapedFilters are the C code's calls of the filter: capture_filter for
// any frame, and one for each frame shape count_frame classifies inline
// (bpf/include/shape.h), where the filter is specialized for what
// count_frame has checked. A shape must claim no more than the C code
// checks; TestCaptureFiltersEveryShape holds them to it, frame by frame.
var shapedFilters = []filter.Call{
	{Function: "capture_filter", Shape: filter.Shape{}},
	{Function: "capture_filter_ipv4_udp", Shape: filter.IPv4Shape(filter.UDP)},
	{Function: "capture_filter_ipv4_tcp", Shape: filter.IPv4Shape(filter.TCP)},
	{Function: "capture_filter_ipv6_udp", Shape: filter.IPv6Shape(filter.UDP)},
	{Function: "capture_filter_ipv6_tcp", Shape: filter.IPv6Shape(filter.TCP)},
	{Function: "capture_filter_vlan", Shape: filter.Shape{Tagged: true}},
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
		"frame_view":        boolByte(cfg.FrameView),
		"vlan_meta":         boolByte(cfg.VLANMetaIfindex != 0),
	} {
		if err := setVar(spec, name, value); err != nil {
			return nil, fmt.Errorf("configure capture: %w", err)
		}
	}
	if cfg.RingBytes != 0 {
		spec.Maps["events"].MaxEntries = cfg.RingBytes
	}
	if err := configureRings(spec, cfg.Rings); err != nil {
		return nil, fmt.Errorf("configure capture: %w", err)
	}
	prog := spec.Programs["xdpscan_capture"]
	if cfg.NoFrags {
		prog.Flags &^= unix.BPF_F_XDP_HAS_FRAGS
	}
	if cfg.VLANMetaIfindex != 0 {
		prog.Flags |= unix.BPF_F_XDP_DEV_BOUND_ONLY
		prog.Ifindex = uint32(cfg.VLANMetaIfindex)
	} else {
		// The kernel refuses a metadata kfunc's call, even one never
		// made, in a program not bound to a device.
		withoutKfunc(prog.Instructions, vlanTagKfunc)
	}
	// The filter runs where the C code calls it, specialized for each
	// call's frame shape (filter.Splice).
	if len(cfg.Filter) > filter.MaxInstructions {
		return nil, fmt.Errorf("install filter: %d classic BPF instructions: at most %d fit in the capture program; capture with a shorter filter",
			len(cfg.Filter), filter.MaxInstructions)
	}
	calls := shapedFilters
	if cfg.FrameView {
		calls = slices.Clone(calls)
		for i := range calls {
			calls[i].Shape.Tagged = false
		}
	}
	if prog.Instructions, err = filter.Splice(prog.Instructions, cfg.Filter, calls); err != nil {
		return nil, err
	}
	// Six copies of a long filter can put a jump (the C code's around
	// them, or the filter's own) past a 16-bit offset.
	if prog.Instructions, err = filter.LongJumps(prog.Instructions); err != nil {
		return nil, fmt.Errorf("install filter: the filter is too long for the capture program: %w; capture with a shorter filter", err)
	}
	c := &Capture{VLANMeta: cfg.VLANMetaIfindex != 0}
	var opts *ebpf.CollectionOptions
	if s := cfg.ShareRings; s != nil {
		opts = &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
			"events": s.Objects.Events, "cpu_rings": s.Objects.CpuRings}}
		c.CPURings = s.CPURings
	}
	if err := spec.LoadAndAssign(&c.Objects, opts); err != nil {
		return nil, loadError("capture program", err)
	}
	if cfg.ShareRings == nil && cfg.Rings.Rings() > 0 {
		rings, err := fillRings(c.Objects.CpuRings, spec.Maps["cpu_rings"].InnerMap, cfg.Rings)
		if err != nil {
			c.Objects.Close()
			return nil, err
		}
		c.CPURings, c.ownRings = rings, true
	}
	return c, nil
}

// Program is the program to attach.
func (c *Capture) Program() *ebpf.Program { return c.Objects.XdpscanCapture }

// Events is the ring of capture_hdr records, each followed by cap_len bytes.
func (c *Capture) Events() *ebpf.Map { return c.Objects.Events }

// Counters sums the per-CPU counters (Matched counts filter matches).
func (c *Capture) Counters() (Counters, error) { return ReadCounters(c.Objects.Counters) }

// RingLostPerCPU is the ring reserve failures counted on each CPU.
func (c *Capture) RingLostPerCPU() ([]uint64, error) { return RingLostPerCPU(c.Objects.Counters) }

// Close releases everything.
func (c *Capture) Close() error {
	if c.ownRings {
		for _, r := range c.CPURings {
			r.Close()
		}
	}
	return c.Objects.Close()
}

// Rings are every ring the program writes: the shared one, then the
// per-CPU ones (none unless Config.Rings asked for them), as a reader of
// all of them (ringbuf.NewMulti) takes them.
func (c *Capture) Rings() []*ebpf.Map {
	return append([]*ebpf.Map{c.Events()}, c.CPURings...)
}

// vlanTagKfunc is the driver's VLAN tag of a received frame (capture.c).
const vlanTagKfunc = "bpf_xdp_metadata_rx_vlan_tag"

// withoutKfunc replaces each call of the kfunc name by its answer when the
// driver has nothing to give: -EOPNOTSUPP, as the kernel's own default
// does.
func withoutKfunc(insns asm.Instructions, name string) {
	for i, ins := range insns {
		if ins.IsKfuncCall() && ins.Reference() == name {
			insns[i] = asm.Mov.Imm(asm.R0, -int32(unix.EOPNOTSUPP)).WithSymbol(ins.Symbol())
		}
	}
}
