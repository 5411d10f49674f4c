package scan

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/loader"
)

// rxHook is where the scan program takes replies: the interface's XDP hook
// when it is free, else TC ingress after the XDP program already there.
//
// XDP first: per packet the XDP program costs as much as its TC variant or
// less (BPF_PROG_RUN, loader.BenchmarkScanProgramXDPvsTC: 50 ns both for a
// validated SYN-ACK, 14 vs 21-22 ns for a frame passed on), and in driver
// mode it runs before the kernel allocates an skb, which TC ingress always
// follows (with the stack's receive path up to it: packet taps, VLAN
// untagging). TC only when XDP is taken: the one hook that chains beside an
// unknown program on a kernel where freplace (libxdp's dispatcher) and
// fentry are refused (lockdown, or no CAP_PERFMON).
type rxHook struct {
	xdp *loader.Attachment
	tc  *loader.ScanTC
	tcx *loader.EgressAttachment
}

// attachRx attaches prog's XDP program to cfg's interface or, when an XDP
// program is already there, loads and attaches its TC variant at TC
// ingress, telling the user so once.
func attachRx(cfg Config, prog *loader.Scan) (*rxHook, error) {
	iface := cfg.iface()
	held := loader.AttachedXDP(iface)
	if held == "" {
		att, err := loader.Attach(prog.Program(), iface, cfg.XDPMode)
		if err == nil {
			return &rxHook{xdp: att}, nil
		}
		// Another program took the hook since the look (shards started
		// together): beside it, then.
		if held = loader.AttachedXDP(iface); held == "" {
			return nil, err
		}
	}
	tc, err := prog.LoadTC()
	if err != nil {
		return nil, err
	}
	att, err := loader.AttachIngress(tc.Program(), iface, loader.HookAuto)
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("scan beside the %s on %s, at TC ingress: %w", held, iface, err)
	}
	if cfg.Notice != nil {
		reset := ""
		if cfg.Reset {
			reset = "; --reset's RSTs leave by a redirect to its egress"
		}
		cfg.Notice(fmt.Sprintf("%s already has %s: replies are taken after it, at TC ingress (%s); "+
			"what it drops or redirects never reaches the scan%s", iface, held, att.Hook, reset))
	}
	return &rxHook{tc: tc, tcx: att}, nil
}

// program is the program that takes the replies (what the metrics' run
// time and count describe): prog's XDP program, or its TC variant.
func (h *rxHook) program(prog *loader.Scan) *ebpf.Program {
	if h.tc != nil {
		return h.tc.Program()
	}
	return prog.Program()
}

// describe fills the stats' hook: the XDP mode, or the TC hook.
func (h *rxHook) describe(st *Stats) {
	if h.xdp != nil {
		st.XDPMode = string(h.xdp.Mode)
		return
	}
	st.RxHook = "tc ingress (" + string(h.tcx.Hook) + "), after the XDP program already attached"
}

// resetNotice tells the user when --reset sent no RST although ports were
// open, at TC ingress: after a generic XDP program with xdp.frags
// (someone else's: capture loads without it in generic mode) the kernel
// hands TC the frames without their MAC header (bpf/scan_tc.c), so the RST
// cannot go back out; the replies were still consumed.
func (h *rxHook) resetNotice(cfg Config, c loader.Counters, open uint64) {
	if h.tc == nil || !cfg.Reset || cfg.Notice == nil || c.TX != 0 || open == 0 {
		return
	}
	cfg.Notice(fmt.Sprintf("--reset sent no RST: at TC ingress after the XDP program on %s the frames come without "+
		"their MAC header (a generic XDP program with xdp.frags), so the targets were left to time out "+
		"their half-open connections; --reset needs the XDP hook, or TC after another kind of program", cfg.iface()))
}

// Close detaches and releases what attachRx attached.
func (h *rxHook) Close() error {
	if h == nil {
		return nil
	}
	var errs []error
	if h.xdp != nil {
		errs = append(errs, h.xdp.Close())
	}
	if h.tcx != nil {
		errs = append(errs, h.tcx.Close())
	}
	if h.tc != nil {
		errs = append(errs, h.tc.Close())
	}
	return errors.Join(errs...)
}
