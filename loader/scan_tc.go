package loader

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/xdpscan/xdpscan/bpf"
)

// ScanTC is the scan program for TC ingress (bpf/scan_tc.c): the same
// parse, validation, de-duplication and ring as the XDP program, for an
// interface whose XDP hook another program holds. It runs after that
// program, on what it passed, and chains with any other TC program
// (AttachIngress: tcx, or clsact below Linux 6.6).
type ScanTC struct {
	Objects bpf.ScanTCObjects
}

// sharedScanMaps are the XDP program's maps the TC program uses instead of
// its own: one ring and one reader, one set of counters (Scan.Counters),
// one de-duplication table, one UDP echo table.
var sharedScanMaps = []string{"events", "cpu_rings", "counters", "dedup", "udp_echoes"}

// LoadTC loads the TC ingress variant of s's program, configured as s
// was (addresses, ports, cookie key, --reset, --confirm), on s's maps.
// s's XDP program stays loaded (--tx xdp's transmitter runs it by
// BPF_PROG_RUN, unattached). The cost per reply of each is in
// scan_tc_bench_test.go: the XDP program is cheaper and runs before the
// kernel allocates an skb, so a scan takes the XDP hook when it is free.
func (s *Scan) LoadTC() (*ScanTC, error) {
	spec, err := bpf.LoadScanTC()
	if err != nil {
		return nil, fmt.Errorf("read embedded TC scan program: %w", err)
	}
	vars := s.cfg.replyVars()
	vars["dedup_mask"] = s.Objects.Dedup.MaxEntries() - 1
	if err := configureRings(spec, s.cfg.Rings); err != nil {
		return nil, fmt.Errorf("configure TC scan program: %w", err)
	}
	for name, value := range vars {
		if err := setVar(spec, name, value); err != nil {
			return nil, fmt.Errorf("configure TC scan program: %w", err)
		}
	}
	repl := map[string]*ebpf.Map{
		"events": s.Objects.Events, "cpu_rings": s.Objects.CpuRings, "counters": s.Objects.Counters,
		"dedup": s.Objects.Dedup, "udp_echoes": s.Objects.UdpEchoes,
	}
	for _, name := range sharedScanMaps {
		// The XDP program's were sized and typed at load (ring, dedup
		// table, per CPU or not).
		spec.Maps[name].MaxEntries = repl[name].MaxEntries()
		spec.Maps[name].Type = repl[name].Type()
	}
	t := &ScanTC{}
	if err := spec.LoadAndAssign(&t.Objects, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return nil, loadError("TC scan program", err)
	}
	return t, nil
}

// Program is the program to attach (AttachIngress).
func (t *ScanTC) Program() *ebpf.Program { return t.Objects.XdpscanScanTc }

// Close releases the program; the maps are the XDP program's (Scan.Close).
func (t *ScanTC) Close() error { return t.Objects.Close() }

// AttachedXDP describes the XDP program attached to iface: its mode
// (AttachedMode), its ID, and its name where this process may look it up
// (BPF_PROG_GET_FD_BY_ID wants CAP_SYS_ADMIN); "" when none is attached.
func AttachedXDP(iface string) string {
	mode, err := AttachedMode(iface)
	if err != nil || mode == "" {
		return ""
	}
	l, err := netlink.LinkByName(iface)
	if err != nil || l.Attrs().Xdp == nil {
		return "an XDP program (" + string(mode) + " mode)"
	}
	id := l.Attrs().Xdp.ProgId
	desc := fmt.Sprintf("an XDP program (id %d, %s mode)", id, mode)
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
		if info, err := p.Info(); err == nil && info.Name != "" {
			desc = fmt.Sprintf("XDP program %s (id %d, %s mode)", info.Name, id, mode)
		}
		p.Close()
	}
	return desc
}
