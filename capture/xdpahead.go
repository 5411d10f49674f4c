package capture

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// XDPAhead is what the XDP program attached before the capture (someone
// else's, another capture's, a scan's: the capture then runs after it, at
// TC ingress) did with the packets it kept from the capture, over the
// capture: its verdicts as the driver counts them, never per packet.
// Per-packet verdicts take an fexit program on it (xdpdump's way), which
// kernel lockdown (confidentiality) refuses even to root, and which needs
// CAP_PERFMON besides.
type XDPAhead struct {
	Interface   string `json:"interface"`
	ProgramID   uint32 `json:"program_id,omitempty"`
	ProgramName string `json:"program_name,omitempty"` // when readable (CAP_SYS_ADMIN)
	XDPMode     string `json:"xdp_mode"`               // native, generic, offload, multi
	Driver      string `json:"driver,omitempty"`
	// Source names the counters read: "ethtool -S of driver veth
	// (rx_queue_0_xdp_drops, ...)".
	Source string `json:"source,omitempty"`
	// The growth of each verdict's counter over the capture; null where
	// the driver does not count it (NotCounted says why, when none is).
	Drop     *uint64 `json:"drop"`
	TX       *uint64 `json:"tx"`
	Redirect *uint64 `json:"redirect"`
	TXErrors *uint64 `json:"tx_errors"`
	// Note says what the driver's counts include.
	Note       string `json:"note,omitempty"`
	NotCounted string `json:"not_counted,omitempty"`
	// Later are the programs that replaced this one ahead of the capture
	// while it ran (a capture that started with the XDP hook free sees
	// each scan that takes it in turn), in order.
	Later []XDPProgram `json:"later_programs,omitempty"`
}

// XDPProgram names an XDP program.
type XDPProgram struct {
	ID   uint32 `json:"id"`
	Name string `json:"name,omitempty"` // when readable (CAP_SYS_ADMIN)
}

// genericNotCounted is why generic mode has no verdict counts. Measured
// on the testbed's veth: 10 frames dropped by a generic-mode program left
// every ethtool -S counter and stats64's rx_dropped as they were, and
// rx_packets grew by all 15 frames sent.
const genericNotCounted = "the program runs in generic (skb) mode, in the kernel's receive path, which counts no XDP verdicts " +
	"(drivers count them only for a program they run themselves, native mode): what it drops was counted as received " +
	"(stats64 rx_packets), never as rx_dropped"

// xdpAheadMeter reads the driver's counters at the start and on demand.
type xdpAheadMeter struct {
	ahead  XDPAhead
	before netdev.XDPVerdictCounts
	counts bool
}

// startXDPAhead takes the first reading of iface's verdict counters, with
// the program attached in mode.
func startXDPAhead(iface string, mode loader.Mode) *xdpAheadMeter {
	m := &xdpAheadMeter{ahead: XDPAhead{Interface: iface, XDPMode: string(mode)}}
	if l, err := netlink.LinkByName(iface); err == nil && l.Attrs().Xdp != nil {
		m.ahead.ProgramID = l.Attrs().Xdp.ProgId
	}
	if m.ahead.ProgramID != 0 {
		m.ahead.ProgramName = programName(m.ahead.ProgramID)
	}
	st, err := netdev.ReadEthtoolStats(iface)
	m.ahead.Driver = st.Driver
	switch {
	case mode == loader.ModeGeneric:
		m.ahead.NotCounted = genericNotCounted
		return m
	case mode == "offload":
		m.ahead.NotCounted = "the program runs on the NIC (offloaded): xdpscan does not read the NIC's own counters"
		return m
	case err != nil:
		m.ahead.NotCounted = err.Error()
		return m
	}
	if m.before, err = netdev.XDPVerdicts(st); err != nil {
		m.ahead.NotCounted = err.Error()
		if mode == "multi" {
			m.ahead.NotCounted += "; besides, a generic-mode program is attached too, whose verdicts nothing counts"
		}
		return m
	}
	m.counts = true
	m.ahead.Source, m.ahead.Note = m.before.Source(), m.before.Note
	if mode == "multi" {
		m.ahead.Note = strings.TrimPrefix(m.ahead.Note+"; ", "; ") + "a generic-mode program is attached too: only the native one's verdicts are counted"
	}
	return m
}

// programName is the name of program id, or "" where it cannot be read:
// BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN, and without it the id is
// all there is.
func programName(id uint32) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// read is the verdicts counted since the start.
func (m *xdpAheadMeter) read() XDPAhead {
	a := m.ahead
	if !m.counts {
		return a
	}
	st, err := netdev.ReadEthtoolStats(a.Interface)
	var now netdev.XDPVerdictCounts
	if err == nil {
		now, err = netdev.XDPVerdicts(st)
	}
	if err != nil {
		a.NotCounted = "the driver's counters could not be read again: " + err.Error()
		return a
	}
	for v, n := range now.Counts {
		if n < m.before.Counts[v] {
			// A driver resets its per-queue counters when the queues are
			// rebuilt (ethtool -L, an XDP program attached or removed).
			a.NotCounted = fmt.Sprintf("the driver's %s counters went back during the capture (its queues were rebuilt?): no count", v)
			return a
		}
	}
	d := now.Sub(m.before).Counts
	for v, p := range map[netdev.Verdict]**uint64{netdev.VerdictDrop: &a.Drop, netdev.VerdictTX: &a.TX,
		netdev.VerdictRedirect: &a.Redirect, netdev.VerdictTXErrors: &a.TXErrors} {
		if n, ok := d[v]; ok {
			*p = &n
		}
	}
	return a
}

// aheadOf starts measuring the XDP program attached to iface, if any
// (nil: none), for a receive path after it (libpcap's socket).
func aheadOf(iface string, progress *Progress) *xdpAheadMeter {
	mode, err := loader.AttachedMode(iface)
	if err != nil || mode == "" {
		return nil
	}
	m := startXDPAhead(iface, mode)
	var all []*xdpAheadMeter
	if p := progress.ahead.Load(); p != nil {
		all = append(all, *p...)
	}
	all = append(all, m)
	progress.ahead.Store(&all)
	return m
}

// lateAheadPoll is how often watchLateAhead looks at the XDP hook: a
// netlink link dump, tens of microseconds, ten times a second.
const lateAheadPoll = 100 * time.Millisecond

// lateAhead watches, for a capture that takes received packets at TC
// ingress because the XDP hook was free and XDP would have run in generic
// mode (ingressSkb), for XDP programs attached after the capture began
// (scans, say): from then on each runs ahead of the capture, which the
// summary must say, even if it is gone again by the end. The first is
// described in full, the ones after it by id (XDPAhead.Later).
type lateAhead struct {
	stop chan struct{}
	seen chan *xdpAheadMeter
	once sync.Once
	m    *xdpAheadMeter
}

func watchLateAhead(iface string) *lateAhead {
	w := &lateAhead{stop: make(chan struct{}), seen: make(chan *xdpAheadMeter, 1)}
	go func() {
		t := time.NewTicker(lateAheadPoll)
		defer t.Stop()
		var first *xdpAheadMeter
		seen := map[uint32]bool{}
		look := func() {
			if first == nil {
				if first = lateAheadOf(iface); first != nil {
					seen[first.ahead.ProgramID] = true
				}
				return
			}
			// Then only the id, cheaply: one link query.
			l, err := netlink.LinkByName(iface)
			if err != nil || l.Attrs().Xdp == nil || l.Attrs().Xdp.ProgId == 0 || seen[l.Attrs().Xdp.ProgId] {
				return
			}
			id := l.Attrs().Xdp.ProgId
			seen[id] = true
			first.ahead.Later = append(first.ahead.Later, XDPProgram{ID: id, Name: programName(id)})
		}
		for {
			look()
			select {
			case <-w.stop:
				look()
				w.seen <- first
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// finish stops the watch and returns the program seen (nil: none, or w
// nil); safe to call more than once.
func (w *lateAhead) finish() *xdpAheadMeter {
	if w == nil {
		return nil
	}
	w.once.Do(func() {
		close(w.stop)
		w.m = <-w.seen
	})
	return w.m
}

// lateAheadOf is the XDP program on iface now, described as attached
// after the capture began (nil: none).
func lateAheadOf(iface string) *xdpAheadMeter {
	mode, err := loader.AttachedMode(iface)
	if err != nil || mode == "" {
		return nil
	}
	m := startXDPAhead(iface, mode)
	m.counts = false
	m.ahead.NotCounted = "it was attached after the capture began and from then on ran ahead of it; what it dropped, sent back or redirected was not seen"
	return m
}

// finish puts the verdicts counted over the capture into st (m nil: none).
func (m *xdpAheadMeter) finish(st *Stats) {
	if m != nil {
		st.Loss.XDPAhead = append(st.Loss.XDPAhead, m.read())
	}
}

// XDPAhead is, live, what the XDP program ahead of the capture did since
// the capture began (nil: the capture runs in that place itself).
func (p *Progress) XDPAhead() []XDPAhead {
	all := p.ahead.Load()
	if all == nil {
		return nil
	}
	var out []XDPAhead
	for _, m := range *all {
		out = append(out, m.read())
	}
	return out
}

// Counted says whether the driver counts any verdict.
func (a XDPAhead) Counted() bool {
	return a.Drop != nil || a.TX != nil || a.Redirect != nil
}

func (a XDPAhead) program() string {
	s := "the XDP program ahead"
	if a.ProgramID == 0 {
		return s
	}
	name := func(id uint32, n string) string {
		if n != "" {
			return fmt.Sprintf("id %d %s", id, n)
		}
		return fmt.Sprintf("id %d", id)
	}
	s += " (" + name(a.ProgramID, a.ProgramName)
	for _, p := range a.Later {
		s += ", then " + name(p.ID, p.Name)
	}
	return s + ")"
}

// Line is the summary's tcpdump-style line: "50 packets dropped by the
// XDP program ahead (xdp_drop), 0 sent back (xdp_tx), 0 redirected
// (xdp_redirect)".
func (a XDPAhead) Line() string {
	if !a.Counted() {
		return fmt.Sprintf("packets dropped, sent back or redirected by %s on %s: not counted (%s)", a.program(), a.Interface, a.NotCounted)
	}
	n := func(p *uint64, what, verdict string) string {
		if p == nil {
			return fmt.Sprintf("%s: not counted by driver %s (%s)", what, a.Driver, verdict)
		}
		return fmt.Sprintf("%d %s (%s)", *p, what, verdict)
	}
	s := n(a.Drop, "packets dropped by "+a.program()+" on "+a.Interface, "xdp_drop") + ", " +
		n(a.TX, "sent back", "xdp_tx") + ", " + n(a.Redirect, "redirected", "xdp_redirect")
	if a.TXErrors != nil {
		s += fmt.Sprintf(", %d could not be sent back (xdp_tx_errors)", *a.TXErrors)
	}
	return s
}

// String is the loss summary's part: what the program ahead kept from the
// capture.
func (a XDPAhead) String() string {
	v := func(p *uint64) string {
		if p == nil {
			return "not counted"
		}
		return fmt.Sprint(*p)
	}
	if !a.Counted() {
		return fmt.Sprintf("not seen, kept by %s on %s (%s mode): unknown, %s", a.program(), a.Interface, a.XDPMode, a.NotCounted)
	}
	return fmt.Sprintf("not seen, kept by %s on %s (%s mode): drop %s, tx %s, redirect %s, from %s",
		a.program(), a.Interface, a.XDPMode, v(a.Drop), v(a.TX), v(a.Redirect), a.Source)
}
