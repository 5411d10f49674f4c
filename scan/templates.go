package scan

import (
	"net/netip"

	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/targets"
)

// probeTemplates are the prebuilt frames of one scan, per family.
type probeTemplates struct{ v4, v6 *familyTemplates }

// familyTemplates are one family's frames.
type familyTemplates struct {
	syn  []*probe.SYN          // by source port - SportLo
	udp  map[uint16]*probe.UDP // by destination port; ports with one payload share a template
	echo *probe.Echo
}

func newProbeTemplates(cfg Config) *probeTemplates {
	p := &probeTemplates{}
	if cfg.Targets.LenIPv4() > 0 {
		p.v4 = newFamilyTemplates(cfg, cfg.Path)
	}
	if cfg.Targets.LenIPv6() > 0 {
		p.v6 = newFamilyTemplates(cfg, cfg.Path6)
	}
	return p
}

func newFamilyTemplates(cfg Config, path route.Path) *familyTemplates {
	p := &familyTemplates{udp: map[uint16]*probe.UDP{}}
	byPayload := map[*probe.Payload]*probe.UDP{}
	for _, port := range cfg.Ports {
		switch port.Proto {
		case targets.ProtoTCP:
			if p.syn != nil {
				continue
			}
			p.syn = make([]*probe.SYN, int(cfg.SportHi-cfg.SportLo)+1)
			for i := range p.syn {
				p.syn[i] = probe.NewSYN(path.SrcMAC, path.RouterMAC, path.Src, cfg.SportLo+uint16(i), cfg.Key)
			}
		case targets.ProtoUDP:
			pl := probe.PayloadFor(port.Num)
			if byPayload[pl] == nil {
				byPayload[pl] = probe.NewUDP(path.SrcMAC, path.RouterMAC, path.Src, cfg.SportLo, cfg.SportHi, pl, cfg.Key)
			}
			p.udp[port.Num] = byPayload[pl]
		case targets.ProtoICMP:
			p.echo = probe.NewEcho(path.SrcMAC, path.RouterMAC, path.Src, cfg.Key)
		}
	}
	return p
}

// fill writes one probe into buf and returns its length.
func (p *probeTemplates) fill(buf []byte, cfg *Config, addr netip.Addr, port targets.Port, sport uint16) int {
	f := p.v4
	if addr.Is6() {
		f = p.v6
	}
	switch port.Proto {
	case targets.ProtoUDP:
		return f.udp[port.Num].Fill(buf, addr, port.Num)
	case targets.ProtoICMP:
		return f.echo.Fill(buf, addr)
	}
	return f.syn[sport-cfg.SportLo].Fill(buf, addr, port.Num)
}

// fillConfirm writes the confirming retry of the UDP probe to addr:port
// (probe.UDP.FillConfirm) into buf and returns its length.
func (p *probeTemplates) fillConfirm(buf []byte, addr netip.Addr, port uint16) int {
	f := p.v4
	if addr.Is6() {
		f = p.v6
	}
	return f.udp[port].FillConfirm(buf, addr, port)
}
