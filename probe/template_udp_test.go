package probe

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/targets"
)

// TestUDPTemplates checks every payload's frames: gopacket decodes them,
// both checksums match gopacket's, the source port is the one the cookie
// names, and the cookie sits where the service will echo it from.
func TestUDPTemplates(t *testing.T) {
	key := CookieKey{21, 22}
	buf := make([]byte, MaxFrame)
	payloads := append([]Payload{genericPayload}, Payloads...)
	for _, pl := range payloads {
		port := uint16(9)
		if len(pl.Ports) > 0 {
			port = pl.Ports[0]
		}
		for _, fam := range families {
			t.Run(pl.Name+"/"+fam.name, func(t *testing.T) {
				tmpl := NewUDP(srcMAC, dstMAC, fam.src, 40000, 40255, &pl, key)
				if tmpl.Len() > MaxFrame {
					t.Fatalf("frame of %d bytes exceeds the transmitter's %d", tmpl.Len(), MaxFrame)
				}
				for _, dst := range fam.dsts {
					d := netip.MustParseAddr(dst)
					n := tmpl.Fill(buf, d, port)
					p := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
					got, proto, sane := decodedIP(p)
					udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
					if got != d || proto != layers.IPProtocolUDP || !sane || udp == nil {
						t.Fatalf("%s: not IP/UDP to it: % x", dst, buf[:n])
					}
					c := testCookie(key, fam.src, d, targets.ProtoUDP, 0, port)
					if uint16(udp.DstPort) != port || uint16(udp.SrcPort) != UDPSourcePort(c, 40000, 40255) {
						t.Fatalf("%s: decoded port %d from port %d", dst, udp.DstPort, udp.SrcPort)
					}
					if ok, err := testpkt.ChecksumsMatch(buf[:n]); !ok || err != nil {
						t.Fatalf("%s: checksums differ from gopacket's in % x (%v)", dst, buf[:n], err)
					}
					h := key.Hash(fam.src, d, targets.ProtoUDP, 0, port)
					if ip4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && ip4.Id != IPID(h) {
						t.Fatalf("%s: IP ID %#x, want %#x", dst, ip4.Id, IPID(h))
					}
					pay := udp.Payload
					switch pl.Echo {
					case loader.EchoDNS:
						var dns layers.DNS
						if err := dns.DecodeFromBytes(pay, gopacket.NilDecodeFeedback); err != nil || dns.ID != DNSID(h) {
							t.Fatalf("%s: DNS ID %#x (%v), want %#x", dst, dns.ID, err, DNSID(h))
						}
						name := string(dns.Questions[0].Name)
						for i, l := 0, 0; i < len(name); i++ {
							if name[i] == '.' {
								continue
							}
							if lower := name[i]&0x20 != 0; lower != (DNSCase(h)>>l&1 == 1) {
								t.Fatalf("%s: name %q, letter %d's case is not cookie bit %d of %#x", dst, name, i, l, DNSCase(h))
							}
							l++
						}
					case loader.EchoNTP:
						if got := binary.BigEndian.Uint64(pay[40:]); got != h {
							t.Fatalf("%s: NTP transmit timestamp %#x, want %#x", dst, got, h)
						}
					case loader.EchoSNMP:
						if got := binary.BigEndian.Uint32(pay[17:]); got != SNMPID(h) || pay[15] != 2 || pay[16] != 4 {
							t.Fatalf("%s: SNMP request-id %#x, want %#x", dst, got, SNMPID(h))
						}
					}
				}
			})
		}
	}
}

// TestPayloadsAreWhatServicesParse decodes the DNS payload with gopacket:
// a malformed request gets no answer, which would read as "filtered".
func TestPayloadsAreWhatServicesParse(t *testing.T) {
	var dns layers.DNS
	if err := dns.DecodeFromBytes(PayloadFor(53).Data, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("DNS payload does not decode: %v", err)
	}
	if len(dns.Questions) != 1 || !strings.EqualFold(string(dns.Questions[0].Name), "version.bind") || dns.Questions[0].Type != layers.DNSTypeTXT ||
		dns.Questions[0].Class != layers.DNSClass(3) /* CH */ {
		t.Fatalf("DNS payload asks %+v", dns.Questions)
	}
	ntp := PayloadFor(123).Data
	if len(ntp) != 48 || ntp[0]&7 != 3 || ntp[0]>>3&7 != 4 {
		t.Fatalf("NTP payload is not a v4 client request: % x", ntp)
	}
	snmp := PayloadFor(161).Data
	if int(snmp[1]) != len(snmp)-2 || int(snmp[14]) != len(snmp)-15 {
		t.Fatalf("SNMP payload's BER lengths are wrong: % x", snmp)
	}
	if PayloadFor(9999).Name != "empty" || len(PayloadFor(9999).Data) != 0 {
		t.Fatal("an unknown port must get the empty payload")
	}
	echoes := UDPEchoes()
	if echoes[53].Kind != loader.EchoDNS || echoes[123].Kind != loader.EchoNTP || echoes[161].Kind != loader.EchoSNMP ||
		echoes[1900].Kind != loader.EchoNone || echoes[123].Len != 48 || len(echoes) != 5 {
		t.Fatalf("UDPEchoes() = %v", echoes)
	}
}

func TestEchoTemplate(t *testing.T) {
	key := CookieKey{31, 32}
	buf := make([]byte, MaxFrame)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			tmpl := NewEcho(srcMAC, dstMAC, fam.src, key)
			for _, dst := range fam.dsts {
				d := netip.MustParseAddr(dst)
				n := tmpl.Fill(buf, d)
				p := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
				got, _, sane := decodedIP(p)
				var idSeq uint32
				proto := targets.ProtoICMP
				if icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && icmp.TypeCode == layers.CreateICMPv4TypeCode(8, 0) {
					idSeq = uint32(icmp.Id)<<16 | uint32(icmp.Seq)
				} else if echo, ok := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo); ok &&
					p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6).TypeCode == layers.CreateICMPv6TypeCode(128, 0) {
					idSeq, proto = uint32(echo.Identifier)<<16|uint32(echo.SeqNumber), targets.ProtoICMPv6
				} else {
					t.Fatalf("%s: not an echo request: % x", dst, buf[:n])
				}
				if got != d || !sane || (proto == targets.ProtoICMPv6) != fam.src.Is6() {
					t.Fatalf("%s: sent to %s (sane header: %v)", dst, got, sane)
				}
				if c := testCookie(key, fam.src, d, proto, 0, 0); idSeq != c {
					t.Fatalf("%s: id:seq %#x, want cookie %#x", dst, idSeq, c)
				}
				if ok, err := testpkt.ChecksumsMatch(buf[:n]); !ok || err != nil {
					t.Fatalf("%s: checksums differ from gopacket's in % x (%v)", dst, buf[:n], err)
				}
			}
		})
	}
}
