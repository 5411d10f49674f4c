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
	c53 := udpCookie(scanner4, target4, 53)
	cEcho := testKey.Cookie4(scanner4.As4(), target4.As4(), 1, 0, 0)
	for _, fr := range []testpkt.Frame{reply("SA", c4+1), reply("RA", c4), qinq, ext, reply6("SA", c6+1),
		udpReply(53, udpSport(c53), dnsAnswer(uint16(c53))),
		icmpError(target4, 3, 3, udpProbe(scanner4, target4, 161), 0),
		{Src: target4, Dst: scanner4, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: uint16(cEcho >> 16), Seq: uint16(cEcho)}},
	} {
		f.Add(testpkt.Build(fr))
	}
	f.Add(arpFrame())

	s := loadScanUDP(f)
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
// the XDP program does not validate) and checks it against the Go cookie:
// a TCP reply's acknowledgement number, a UDP reply's port and echoed
// bytes, an echo reply's id:seq, or the probe an ICMP error quotes.
func cookieValidates(frame []byte) bool {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	nl := p.NetworkLayer()
	if nl == nil {
		return false
	}
	var proto layers.IPProtocol
	var l4 []byte
	switch ip := nl.(type) {
	case *layers.IPv4:
		if ip.FragOffset != 0 {
			return false
		}
		proto, l4 = ip.Protocol, ip.Payload
	case *layers.IPv6:
		next := ip.NextHeader
		if ip.HopByHop != nil {
			// gopacket decodes a hop-by-hop header itself: Payload starts after it.
			next = ip.HopByHop.NextHeader
		}
		proto, l4 = ipv6L4(next, ip.Payload)
	}
	src, _ := netip.AddrFromSlice(nl.NetworkFlow().Src().Raw())
	dst, _ := netip.AddrFromSlice(nl.NetworkFlow().Dst().Raw())
	if len(l4) < 8 || (dst != scanner4 && dst != scanner6) {
		return false
	}
	sport, dport := binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	switch proto {
	case layers.IPProtocolTCP:
		tcp := decodeTCP(l4)
		if tcp == nil {
			return false
		}
		c := cookie(dst, src, dport, sport)
		return tcp.Ack-1 == c || (tcp.RST && tcp.Ack == c)
	case layers.IPProtocolUDP:
		c := udpCookie(dst, src, sport)
		if dport != udpSport(c) {
			return false
		}
		payload := l4[8:]
		switch sport {
		case 53:
			return len(payload) >= 2 && binary.BigEndian.Uint16(payload) == uint16(c)
		case 123:
			return len(payload) >= 32 && binary.BigEndian.Uint32(payload[28:]) == c
		}
		return true
	case layers.IPProtocolICMPv4, layers.IPProtocolICMPv6:
		typ := l4[0]
		if typ == 0 && dst.Is4() || typ == 129 && dst.Is6() {
			return binary.BigEndian.Uint32(l4[4:]) == cookieOf(dst, src, uint8(proto), 0, 0)
		}
		isErr := dst.Is4() && (typ == 3 || typ == 4 || typ == 11 || typ == 12) || dst.Is6() && typ >= 1 && typ <= 4
		return isErr && quoteValidates(dst, l4[8:])
	}
	return false
}

// quoteValidates checks the probe an ICMP error quotes.
func quoteValidates(us netip.Addr, q []byte) bool {
	var inProto uint8
	var inSrc, inDst netip.Addr
	if us.Is4() {
		if len(q) < 20 || q[0]>>4 != 4 || int(q[0]&15)*4 < 20 {
			return false
		}
		ihl := int(q[0]&15) * 4
		inProto, inSrc, inDst = q[9], netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20]))
		q = q[min(ihl, len(q)):]
	} else {
		if len(q) < 40 || q[0]>>4 != 6 {
			return false
		}
		inProto, inSrc, inDst = q[6], netip.AddrFrom16([16]byte(q[8:24])), netip.AddrFrom16([16]byte(q[24:40]))
		q = q[40:]
	}
	if len(q) < 8 || inSrc != us {
		return false
	}
	sport, dport := binary.BigEndian.Uint16(q), binary.BigEndian.Uint16(q[2:])
	inRange := sport >= 40000 && sport <= 40255
	switch inProto {
	case 6:
		return inRange && binary.BigEndian.Uint32(q[4:]) == cookieOf(us, inDst, 6, sport, dport)
	case 17:
		return inRange && sport == udpSport(udpCookie(us, inDst, dport))
	case 1, 58:
		wantType := uint8(8)
		if us.Is6() {
			wantType = 128
		}
		return q[0] == wantType && binary.BigEndian.Uint32(q[4:]) == cookieOf(us, inDst, inProto, 0, 0)
	}
	return false
}

func cookieOf(us, target netip.Addr, proto uint8, sport, dport uint16) uint32 {
	if us.Is4() {
		return testKey.Cookie4(us.As4(), target.As4(), proto, sport, dport)
	}
	return testKey.Cookie6(us.As16(), target.As16(), proto, sport, dport)
}

// ipv6L4 skips extension headers (RFC 8200) and returns the transport
// protocol and its bytes, or nil when there are none (a non-first fragment).
func ipv6L4(next layers.IPProtocol, b []byte) (layers.IPProtocol, []byte) {
	for i := 0; i < 6; i++ {
		if len(b) < 8 {
			return next, nil
		}
		switch next {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination:
			n := (int(b[1]) + 1) * 8
			if len(b) < n {
				return next, nil
			}
			next, b = layers.IPProtocol(b[0]), b[n:]
		case layers.IPProtocolAH:
			n := (int(b[1]) + 2) * 4
			if len(b) < n {
				return next, nil
			}
			next, b = layers.IPProtocol(b[0]), b[n:]
		case layers.IPProtocolIPv6Fragment:
			if binary.BigEndian.Uint16(b[2:])&^7 != 0 {
				return next, nil
			}
			next, b = layers.IPProtocol(b[0]), b[8:]
		default:
			return next, b
		}
	}
	switch next {
	case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination,
		layers.IPProtocolAH, layers.IPProtocolIPv6Fragment:
		return next, nil
	}
	return next, b
}

func decodeTCP(b []byte) *layers.TCP {
	tcp := &layers.TCP{}
	if b == nil || tcp.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
		return nil
	}
	return tcp
}
