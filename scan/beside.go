package scan

import (
	"errors"
	"fmt"

	"github.com/xdpscan/xdpscan/loader"
)

// rxHook is where the scan program takes replies: the interface's XDP hook
// when it is free, else TC ingress after the XDP program already there.
//
// XDP first: per reply the XDP program costs the same as its TC variant or
// less (BPF_PROG_RUN, loader.BenchmarkScanProgramXDPvsTC: 49 vs 48 ns for a
// validated SYN-ACK, 14 vs 20 ns for a frame passed on), and in driver
// mode it runs before the kernel allocates an skb, which TC ingress always
// follows. TC only when XDP is taken: the one hook that chains beside an
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
		if err != nil {
			return nil, err
		}
		return &rxHook{xdp: att}, nil
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

// describe fills the stats' hook: the XDP mode, or the TC hook.
func (h *rxHook) describe(st *Stats) {
	if h.xdp != nil {
		st.XDPMode = string(h.xdp.Mode)
		return
	}
	st.RxHook = "tc ingress (" + string(h.tcx.Hook) + "), after the XDP program already attached"
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
