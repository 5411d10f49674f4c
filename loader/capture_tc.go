package loader

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	cbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// CaptureEgress is the loaded egress capture program (bpf/capture_tc.c):
// the same filter as the XDP capture program, run on what the interface
// sends, writing to the XDP program's ring.
type CaptureEgress struct {
	Objects bpf.CaptureTCObjects
}

// egressFilter is capture_tc.c's one call of the filter; a TC program's
// frames have no shape known in advance.
var egressFilter = []filter.Call{{Function: "capture_egress_filter", Context: filter.ContextSKB}}

// LoadCaptureEgress loads the egress capture program with cfg's filter,
// snaplen and count-only setting; its records go to ring (the XDP capture
// program's events map, Capture.Events), or to a ring of its own when ring
// is nil.
func LoadCaptureEgress(cfg CaptureConfig, ring *ebpf.Map) (*CaptureEgress, error) {
	return LoadCaptureTC(cfg, ring, false)
}

// LoadCaptureTC is LoadCaptureEgress, or with inbound the same program for
// a TC ingress hook (AttachIngress): its records then say inbound. With
// cfg.ShareRings it writes into that XDP program's rings instead (its
// shared ring and, with cfg.Rings, its per-CPU ones), and ring is unused.
func LoadCaptureTC(cfg CaptureConfig, ring *ebpf.Map, inbound bool) (*CaptureEgress, error) {
	if cfg.Snaplen == 0 {
		return nil, fmt.Errorf("load egress capture: snaplen must be at least 1")
	}
	if err := prepare(); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadCaptureTC()
	if err != nil {
		return nil, fmt.Errorf("read embedded egress capture program: %w", err)
	}
	for name, value := range map[string]any{
		"count_only":        boolByte(cfg.CountOnly),
		"snaplen":           cfg.Snaplen,
		"ring_wakeup_bytes": cfg.RingWakeupBytes,
		"inbound":           boolByte(inbound),
		"filter_all":        boolByte(keepsAll(cfg.Filter, cfg.Snaplen)),
	} {
		if err := setVar(spec, name, value); err != nil {
			return nil, fmt.Errorf("configure egress capture: %w", err)
		}
	}
	if cfg.RingBytes != 0 {
		spec.Maps["events"].MaxEntries = cfg.RingBytes
	}
	if cfg.ShareRings != nil {
		if err := configureRings(spec, cfg.Rings); err != nil {
			return nil, fmt.Errorf("configure capture: %w", err)
		}
	}
	if len(cfg.Filter) > filter.MaxInstructions {
		return nil, fmt.Errorf("install filter: %d classic BPF instructions: at most %d fit in the capture program; capture with a shorter filter",
			len(cfg.Filter), filter.MaxInstructions)
	}
	prog := spec.Programs["xdpscan_capture_egress"]
	calls := egressFilter
	if inbound {
		calls = []filter.Call{{Function: egressFilter[0].Function, Context: filter.ContextSKBIngress}}
	}
	if prog.Instructions, err = filter.Splice(prog.Instructions, cfg.Filter, calls); err != nil {
		return nil, err
	}
	if prog.Instructions, err = filter.LongJumps(prog.Instructions); err != nil {
		return nil, fmt.Errorf("install filter: the filter is too long for the egress capture program: %w; capture with a shorter filter", err)
	}
	var opts *ebpf.CollectionOptions
	switch s := cfg.ShareRings; {
	case s != nil:
		opts = &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
			"events": s.Objects.Events, "cpu_rings": s.Objects.CpuRings}}
	case ring != nil:
		opts = &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"events": ring}}
	}
	c := &CaptureEgress{}
	if err := spec.LoadAndAssign(&c.Objects, opts); err != nil {
		return nil, loadError("egress capture program", err)
	}
	return c, nil
}

// Program is the program to attach (AttachEgress).
func (c *CaptureEgress) Program() *ebpf.Program { return c.Objects.XdpscanCaptureEgress }

// Events is the ring the records go to.
func (c *CaptureEgress) Events() *ebpf.Map { return c.Objects.Events }

// Counters sums the per-CPU counters: Packets, Bytes, Matched and
// RingLost of what the interface sent.
func (c *CaptureEgress) Counters() (Counters, error) { return ReadCounters(c.Objects.Counters) }

// RingLostPerCPU is the ring reserve failures counted on each CPU.
func (c *CaptureEgress) RingLostPerCPU() ([]uint64, error) { return RingLostPerCPU(c.Objects.Counters) }

// Close releases everything.
func (c *CaptureEgress) Close() error { return c.Objects.Close() }

// EgressHook is how a TC program is attached to an interface's egress.
type EgressHook string

const (
	// HookAuto picks tcx where the kernel has it (internal/kfloor's
	// table: Linux 6.6), clsact below.
	HookAuto EgressHook = "auto"
	// HookTCX attaches through a tcx bpf_link: it chains with other
	// programs (each returning TCX_NEXT passes the packet on) and detaches
	// by itself when the process exits, even by SIGKILL.
	HookTCX EgressHook = "tcx"
	// HookClsact adds a cls_bpf filter (direct action) on a clsact qdisc's
	// egress, creating the qdisc if there is none. It stays if the
	// process is killed; Close removes it, and the qdisc if it made it.
	HookClsact EgressHook = "clsact"
)

// EgressAttachment is a TC program attached to an interface's egress.
type EgressAttachment struct {
	Interface string
	Hook      EgressHook // tcx or clsact: what was used
	link      link.Link
	filter    *netlink.BpfFilter
	qdisc     netlink.Qdisc // the clsact qdisc this attachment created
}

// clsactPriority is the cls_bpf filter's priority: a fixed, unusual one,
// with the handle below, so the filter is found again to delete.
const clsactPriority = 0xc0de

// AttachEgress attaches prog to iface's egress by hook (HookAuto: tcx
// where internal/kfloor says the kernel has it, else clsact).
func AttachEgress(prog *ebpf.Program, iface string, hook EgressHook) (*EgressAttachment, error) {
	return attachTC(prog, iface, hook, false)
}

// AttachIngress attaches prog (LoadCaptureTC with inbound) to iface's TC
// ingress hook, as AttachEgress does to its egress.
func AttachIngress(prog *ebpf.Program, iface string, hook EgressHook) (*EgressAttachment, error) {
	return attachTC(prog, iface, hook, true)
}

func attachTC(prog *ebpf.Program, iface string, hook EgressHook, ingress bool) (*EgressAttachment, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("attach to %s's TC %s: no such interface; see `ip link`", iface, tcSide(ingress))
	}
	if hook == "" || hook == HookAuto {
		hook = HookTCX
		if missing, err := kfloor.Missing(kfloor.TCX); err == nil && len(missing) > 0 {
			hook = HookClsact
		}
	}
	a := &EgressAttachment{Interface: iface, Hook: hook}
	switch hook {
	case HookTCX:
		at := ebpf.AttachTCXEgress
		if ingress {
			at = ebpf.AttachTCXIngress
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: prog, Attach: at})
		if err != nil {
			return nil, egressError(iface, hook, ingress, err)
		}
		a.link = l
	case HookClsact:
		if err := a.attachClsact(ifc.Index, prog, ingress); err != nil {
			return nil, egressError(iface, hook, ingress, err)
		}
	default:
		return nil, fmt.Errorf("attach egress capture to %s: unknown hook %q: use auto, tcx or clsact", iface, hook)
	}
	return a, nil
}

func (a *EgressAttachment) attachClsact(ifindex int, prog *ebpf.Program, ingress bool) error {
	parent := uint32(netlink.HANDLE_MIN_EGRESS)
	if ingress {
		parent = netlink.HANDLE_MIN_INGRESS
	}
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
	switch err := netlink.QdiscAdd(q); {
	case err == nil:
		a.qdisc = q
	case errors.Is(err, unix.EEXIST): // someone's clsact: add to it, leave it
	default:
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent,
		Handle: netlink.MakeHandle(0, 1), Protocol: unix.ETH_P_ALL, Priority: clsactPriority},
		Fd: prog.FD(), Name: "xdpscan_capture_egress", DirectAction: true}
	if err := netlink.FilterAdd(f); err != nil {
		if a.qdisc != nil {
			_ = netlink.QdiscDel(a.qdisc)
		}
		return fmt.Errorf("add cls_bpf filter: %w", err)
	}
	a.filter = f
	return nil
}

// Close detaches the program. It is safe to call more than once.
func (a *EgressAttachment) Close() error {
	if a == nil {
		return nil
	}
	var errs []error
	if a.link != nil {
		errs = append(errs, a.link.Close())
		a.link = nil
	}
	if a.filter != nil {
		errs = append(errs, netlink.FilterDel(a.filter))
		a.filter = nil
	}
	if a.qdisc != nil {
		errs = append(errs, netlink.QdiscDel(a.qdisc))
		a.qdisc = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach egress capture from %s: %w", a.Interface, err)
	}
	return nil
}

func egressError(iface string, hook EgressHook, ingress bool, err error) error {
	side := tcSide(ingress)
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("attach to %s's TC %s (%s): not permitted: it needs CAP_NET_ADMIN: %w", iface, side, hook, err)
	case hook == HookTCX && (errors.Is(err, unix.EINVAL) || errors.Is(err, ebpf.ErrNotSupported)):
		what := "capture -Q in only, "
		if ingress {
			what = "" // a capture's or a scan's caller says what else it can do
		}
		return fmt.Errorf("attach to %s's TC %s: this kernel has no tcx (%s); %s--egress-hook clsact, or a kernel with it: %w",
			iface, side, kfloor.TCX.Explain(), what, err)
	case hook == HookClsact && errors.Is(err, unix.EEXIST):
		return fmt.Errorf("attach to %s's TC %s (clsact): a filter with priority %#x is already there: "+
			"another capture's or scan's, or one a killed one left (`tc filter show dev %s %s`; "+
			"`tc filter del dev %s %s pref %d` if it is not in use): %w", iface, side, clsactPriority, iface, side, iface, side, clsactPriority, err)
	}
	return fmt.Errorf("attach to %s's TC %s (%s): %w", iface, side, hook, err)
}

// tcSide names a TC hook's direction as `tc filter` does.
func tcSide(ingress bool) string {
	if ingress {
		return "ingress"
	}
	return "egress"
}

// keepsAll says whether a classic BPF filter keeps every packet up to the
// snaplen: one return of a constant at least that (libpcap's code for no
// filter expression is "ret #snaplen").
func keepsAll(prog []cbpf.RawInstruction, snaplen uint32) bool {
	return len(prog) == 1 && prog[0].Op == unix.BPF_RET|unix.BPF_K && prog[0].K >= snaplen
}
