package scan

import (
	"net"
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/targets"
)

// BenchmarkProbeTemplatesMixed is the sender's real per-probe path (probeAt,
// then the template of the probe's kind) over TCP, UDP and echo probes.
func BenchmarkProbeTemplatesMixed(b *testing.B) {
	for _, fam := range []struct {
		name   string
		target targets.Range
	}{{"ipv4", r4("198.18.0.0", "198.19.255.255")}, {"ipv6", r4("2001:2::", "2001:2::1:ffff")}} {
		b.Run(fam.name, func(b *testing.B) { benchmarkProbes(b, fam.target) })
	}
}

func benchmarkProbes(b *testing.B, target targets.Range) {
	cfg := Config{Targets: targets.NewRangeSet([]targets.Range{target}), SportLo: 40000, SportHi: 40255, Shards: 1,
		Ports: []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 443}, {Proto: targets.ProtoUDP, Num: 53}, {Proto: targets.ProtoUDP, Num: 123}, {Proto: targets.ProtoUDP, Num: 161}, targets.Echo},
		Path:  route.Path{SrcMAC: srcMAC, RouterMAC: dstMAC, Src: srcIP}, Path6: route.Path{SrcMAC: srcMAC, RouterMAC: dstMAC, Src: srcIP6},
		Key: probe.CookieKey{1, 2}}
	templates := newProbeTemplates(cfg)
	perm := cfg.passOrder(0)
	buf := make([]byte, probe.MaxFrame)
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		addr, port, sport := cfg.probeAt(perm, Position{Next: i % perm.Len()})
		templates.fill(buf, &cfg, addr, port, sport)
	}
}

var (
	srcMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	srcIP  = netip.MustParseAddr("198.19.0.1")
	srcIP6 = netip.MustParseAddr("2001:2:0:ffff::1")
)

func BenchmarkProbeHotPath(b *testing.B) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.19.255.255")})
	perm := targets.NewPermutation(set.Len()*4, 1)
	ports := []uint16{22, 80, 443, 8080}
	tmpl := probe.NewSYN(srcMAC, dstMAC, srcIP, 40000, probe.CookieKey{1, 2})
	buf := make([]byte, 128)
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		x := perm.At(i % perm.Len())
		tmpl.Fill(buf, set.At(x/4), ports[x%4])
	}
}
