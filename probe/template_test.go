package probe

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/targets"
)

var (
	srcMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	srcIP  = netip.MustParseAddr("198.19.0.1")
	srcIP6 = netip.MustParseAddr("2001:2:0:ffff::1")
)

// families are the sources and destinations every template is tested with:
// edge values of both address families.
var families = []struct {
	name string
	src  netip.Addr
	dsts []string
}{
	{"ipv4", srcIP, []string{"198.18.0.1", "198.18.255.254", "255.255.255.255", "0.0.0.1"}},
	{"ipv6", srcIP6, []string{"2001:2::1", "2001:2::ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1"}},
}

// testCookie is the cookie a probe from src to dst must carry.
func testCookie(key CookieKey, src, dst netip.Addr, proto uint8, sport, dport uint16) uint32 {
	return key.Cookie(src, dst, proto, sport, dport)
}

// decodedIP is the destination and L4 protocol of a frame's IP layer.
func decodedIP(p gopacket.Packet) (netip.Addr, layers.IPProtocol, bool) {
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		a, _ := netip.AddrFromSlice(ip.DstIP.To4())
		return a, ip.Protocol, ip.IHL == 5 && ip.TTL == 64
	case *layers.IPv6:
		a, _ := netip.AddrFromSlice(ip.DstIP)
		return a, ip.NextHeader, ip.HopLimit == 64 && int(ip.Length) == len(ip.Payload)
	}
	return netip.Addr{}, 0, false
}

// TestSYNTemplateChecksums checks the incrementally patched frames of both
// families against gopacket's decoding and its own checksum computation.
func TestSYNTemplateChecksums(t *testing.T) {
	key := CookieKey{11, 12}
	buf := make([]byte, MaxFrame)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			tmpl := NewSYN(srcMAC, dstMAC, fam.src, 40007, key)
			for _, dst := range fam.dsts {
				for _, port := range []uint16{1, 80, 443, 65535} {
					d := netip.MustParseAddr(dst)
					n := tmpl.Fill(buf, d, port)
					p := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
					got, proto, sane := decodedIP(p)
					tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
					if got != d || proto != layers.IPProtocolTCP || !sane || tcp == nil || uint16(tcp.DstPort) != port || !tcp.SYN || tcp.ACK {
						t.Fatalf("%s:%d: decoded % x", dst, port, buf[:n])
					}
					if want := testCookie(key, fam.src, d, targets.ProtoTCP, 40007, port); tcp.Seq != want {
						t.Fatalf("%s:%d: seq %#x, want cookie %#x", dst, port, tcp.Seq, want)
					}
					if ok, err := testpkt.ChecksumsMatch(buf[:n]); !ok || err != nil {
						t.Fatalf("%s:%d: checksums differ from gopacket's in % x (%v)", dst, port, buf[:n], err)
					}
				}
			}
		})
	}
}
