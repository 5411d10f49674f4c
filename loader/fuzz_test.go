package loader_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// FuzzScanProgram runs arbitrary frames through the scan program and checks
// that it only ever consumes replies whose cookie validates, and that its
// counters stay consistent.
func FuzzScanProgram(f *testing.F) {
	c4 := cookie(scanner4, target4, 40001, 443)
	c6 := cookie(scanner6, target6, 40001, 443)
	qinq := reply("SA", c4+1)
	qinq.VLANs = []uint16{100, 10}
	ext := reply6("RA", c6)
	ext.IPv6Ext = []testpkt.Ext{testpkt.HopByHop(), testpkt.Fragment6(0, true)}
	for _, fr := range []testpkt.Frame{reply("SA", c4+1), reply("RA", c4), qinq, ext, reply6("SA", c6+1)} {
		f.Add(testpkt.Build(fr))
	}
	f.Add(arpFrame())

	s := loadScan(f, testKey)
	prev := counters(f, s)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 4000 {
			t.Skip("BPF_PROG_RUN takes 14 bytes to a page of XDP data")
		}
		verdict, err := s.Program().Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatalf("BPF_PROG_RUN: %v", err)
		}
		now := counters(t, s)
		d := now.Sub(prev)
		prev = now
		checkInvariant(t, now)
		if d.Packets != 1 {
			t.Fatalf("packets counted %d times", d.Packets)
		}
		events := drain(t, s)
		switch verdict {
		case xdpPass:
			if d.Matched != 0 || len(events) != 0 {
				t.Fatalf("passed frame but matched %d, %d events", d.Matched, len(events))
			}
		case xdpDrop:
			if d.Matched != 1 || len(events)+int(d.Duplicates) != 1 {
				t.Fatalf("dropped frame: matched %d, events %d, duplicates %d", d.Matched, len(events), d.Duplicates)
			}
			if !cookieValidates(frame) {
				t.Fatalf("dropped a frame whose cookie does not validate: % x", frame)
			}
		default:
			t.Fatalf("verdict %d: the scan program only passes or drops", verdict)
		}
	})
}

// cookieValidates decodes frame independently (gopacket for the headers,
// a walk by length fields for IPv6 extension headers, whose option contents
// the XDP program does not validate) and checks the acknowledgement number
// against the Go cookie.
func cookieValidates(frame []byte) bool {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	net := p.NetworkLayer()
	if net == nil {
		return false
	}
	var tcp *layers.TCP
	switch ip := net.(type) {
	case *layers.IPv4:
		if ip.FragOffset != 0 || ip.Protocol != layers.IPProtocolTCP {
			return false
		}
		tcp = decodeTCP(ip.Payload)
	case *layers.IPv6:
		tcp = decodeTCP(ipv6L4(ip.NextHeader, ip.Payload))
	}
	if tcp == nil {
		return false
	}
	src, _ := netip.AddrFromSlice(net.NetworkFlow().Src().Raw())
	dst, _ := netip.AddrFromSlice(net.NetworkFlow().Dst().Raw())
	c := cookie(dst, src, uint16(tcp.DstPort), uint16(tcp.SrcPort))
	return tcp.Ack-1 == c || (tcp.RST && tcp.Ack == c)
}

// ipv6L4 skips extension headers (RFC 8200) and returns the TCP bytes, or
// nil when there are none (a non-first fragment, another protocol).
func ipv6L4(next layers.IPProtocol, b []byte) []byte {
	for i := 0; i < 6; i++ {
		if len(b) < 8 {
			return nil
		}
		switch next {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination:
			n := (int(b[1]) + 1) * 8
			if len(b) < n {
				return nil
			}
			next, b = layers.IPProtocol(b[0]), b[n:]
		case layers.IPProtocolAH:
			n := (int(b[1]) + 2) * 4
			if len(b) < n {
				return nil
			}
			next, b = layers.IPProtocol(b[0]), b[n:]
		case layers.IPProtocolIPv6Fragment:
			if binary.BigEndian.Uint16(b[2:])&^7 != 0 {
				return nil
			}
			next, b = layers.IPProtocol(b[0]), b[8:]
		case layers.IPProtocolTCP:
			return b
		default:
			return nil
		}
	}
	if next == layers.IPProtocolTCP {
		return b
	}
	return nil
}

func decodeTCP(b []byte) *layers.TCP {
	tcp := &layers.TCP{}
	if b == nil || tcp.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
		return nil
	}
	return tcp
}
