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
	h53 := udpHash(scanner4, target4, 53)
	c53 := uint32(h53)
	cEcho := testKey.Cookie4(scanner4.As4(), target4.As4(), 1, 0, 0)
	for _, fr := range []testpkt.Frame{reply("SA", c4+1), reply("RA", c4), qinq, ext, reply6("SA", c6+1),
		udpReply(53, udpSport(c53), dnsAnswer(h53)),
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
		ourPort, req := udpPayloadOf(dst, src, sport)
		return dport == ourPort && udpEchoValidates(sport, req, l4[8:])
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
	var ipq []byte
	if us.Is4() {
		if len(q) < 20 || q[0]>>4 != 4 || int(q[0]&15)*4 < 20 {
			return false
		}
		ihl := int(q[0]&15) * 4
		inProto, inSrc, inDst = q[9], netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20]))
		ipq = q
		q = q[min(ihl, len(q)):]
	} else {
		if len(q) < 40 || q[0]>>4 != 6 {
			return false
		}
		inProto, inSrc, inDst = q[6], netip.AddrFrom16([16]byte(q[8:24])), netip.AddrFrom16([16]byte(q[24:40]))
		ipq = q
		q = q[40:]
	}
	if len(q) < 8 || inSrc != us {
		return false
	}
	// The probe we would have sent to that tuple, built by the probe
	// package's templates: the quote must be it on every checked byte.
	sport, dport := binary.BigEndian.Uint16(q), binary.BigEndian.Uint16(q[2:])
	if inProto == 6 && (sport < 40000 || sport > 40255) {
		return false
	}
	sent := sentProbe(us, inDst, inProto, sport, dport)
	hl := ipHeaderLen(us)
	if us.Is4() && string(ipq[4:6]) != string(sent[4:6]) {
		return false // the IP ID
	}
	if us.Is6() && string(ipq[2:4]) != string(sent[2:4]) {
		return false // the flow label's low 16 bits
	}
	l4 := sent[hl : hl+8]
	switch inProto {
	case 6, 17:
		return string(q[:8]) == string(l4)
	case 1, 58:
		wantType := uint8(8)
		if us.Is6() {
			wantType = 128
		}
		return q[0] == wantType && string(q[4:8]) == string(l4[4:8])
	}
	return false
}

// udpEchoValidates checks what a UDP service echoes of our request req in
// its answer pay: the DNS ID and name's letter case, the NTP origin
// timestamp, the SNMP request-id (found by walking BER lengths); other
// services echo nothing.
func udpEchoValidates(port uint16, req, pay []byte) bool {
	switch port {
	case 53:
		if len(pay) < 26 || string(pay[:2]) != string(req[:2]) {
			return false
		}
		for o := 13; o < 25; o++ {
			if o != 20 && pay[o]&0x20 != req[o]&0x20 {
				return false
			}
		}
		return true
	case 123:
		return len(pay) >= 32 && string(pay[24:32]) == string(req[40:48])
	case 161:
		at := 0
		skipLen := func() bool {
			if at+2 > len(pay) {
				return false
			}
			switch l := pay[at+1]; {
			case l < 0x80:
				at += 2
			case l == 0x81 || l == 0x82:
				at += 2 + int(l&3)
			default:
				return false
			}
			return true
		}
		if len(pay) < 2 || pay[0] != 0x30 || !skipLen() {
			return false
		}
		if at+3 > len(pay) || pay[at] != 2 || pay[at+1] != 1 {
			return false
		}
		at += 3
		if at+2 > len(pay) || pay[at] != 4 || pay[at+1] >= 0x80 {
			return false
		}
		at += 2 + int(pay[at+1])
		if at+2 > len(pay) || pay[at] != 0xa2 || !skipLen() {
			return false
		}
		return at+6 <= len(pay) && pay[at] == 2 && pay[at+1] == 4 && string(pay[at+2:at+6]) == string(req[17:21])
	}
	return true
}

func cookieOf(us, target netip.Addr, proto uint8, sport, dport uint16) uint32 {
	return testKey.Cookie(us, target, proto, sport, dport)
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

// FuzzCaptureProgram runs arbitrary frames through the capture program
// (-w, snaplen 100) with a filter that reads at computed offsets: every
// frame passes, the counters stay consistent, and a frame is captured
// exactly when libpcap's filter, run by the classic BPF VM, keeps it, with
// min(length, snaplen, the filter's result) of its bytes.
func FuzzCaptureProgram(f *testing.F) {
	// A page less XDP's headroom and skb_shared_info: the most linear data
	// BPF_PROG_RUN gives an XDP program on x86-64.
	const maxLinearXDP = 4096 - 256 - 320
	const expr, snaplen = "tcp[(tcp[12] >> 2)] == 71 or udp port 53 or icmp6 or ip[8] > 200", 100
	vm := classicVM(f, expr)
	get := append([]byte("GET / HTTP/1.1\r\n"), make([]byte, 100)...)
	for _, fr := range []testpkt.Frame{
		// 198.19.0.1.33000 > 198.18.0.1.80: Flags [P.], HTTP GET
		{Src: scanner4, Dst: target4, L4: testpkt.TCP(33000, 80, 5, 6, "PA"), Payload: get},
		// 198.19.0.1.5353 > 198.18.0.53.53: UDP, with VLAN 100 in front of another
		{Src: scanner4, Dst: target4, L4: &layers.UDP{SrcPort: 5353, DstPort: 53}, Payload: make([]byte, 30)},
		{VLANs: []uint16{100}, Src: scanner4, Dst: target4, L4: &layers.UDP{SrcPort: 5353, DstPort: 53}},
		// IP6 2001:2::1 > 2001:2::1:7: ICMP6 echo request
		{Src: scanner6, Dst: target6, L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, Payload: make([]byte, 8)},
		reply("SA", 1), reply6("RA", 1),
	} {
		f.Add(testpkt.Build(fr))
	}
	f.Add(arpFrame())

	c := loadCapture(f, expr, snaplen, false)
	// The full parser's counts, which the capture program's own
	// classification must equal.
	reference := loadResponder(f)
	prev, err := c.Counters()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > maxLinearXDP {
			t.Skip("BPF_PROG_RUN puts 14 to 3520 bytes in an XDP frame's linear data; the rest would go to fragments")
		}
		verdict, err := c.Program().Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatalf("BPF_PROG_RUN: %v", err)
		}
		if verdict != xdpPass {
			t.Fatalf("verdict %d: capture must pass every frame", verdict)
		}
		now, err := c.Counters()
		if err != nil {
			t.Fatal(err)
		}
		d := now.Sub(prev)
		prev = now
		if d.Packets != 1 || d.Packets != d.L2Errors+d.NonIP+d.IPv4+d.IPv6 || d.TCP != d.TCPSyn+d.TCPSynAck+d.TCPRst+d.TCPFin+d.TCPOther {
			t.Fatalf("inconsistent counters for one frame: %+v", d)
		}
		if want := countOne(t, reference, frame); parseCounts(d) != want {
			t.Fatalf("the capture program counted %+v, the full parser %+v: % x", parseCounts(d), want, frame[:min(len(frame), 64)])
		}
		keep, _ := vm.Run(frame)
		got := drainCaptures(t, c)
		if keep == 0 {
			if d.Matched != 0 || len(got) != 0 {
				t.Fatalf("the filter keeps nothing, the program matched %d and captured %d: % x", d.Matched, len(got), frame[:min(len(frame), 64)])
			}
			return
		}
		want := min(len(frame), snaplen, keep)
		if d.Matched != 1 || len(got) != 1 {
			t.Fatalf("the filter keeps %d bytes, the program matched %d and captured %d: % x", keep, d.Matched, len(got), frame[:min(len(frame), 64)])
		}
		if g := got[0]; int(g.hdr.OrigLen) != len(frame) || int(g.hdr.CapLen) != want || string(g.data) != string(frame[:want]) {
			t.Fatalf("captured %d of %d bytes, want the first %d of %d: % x", g.hdr.CapLen, g.hdr.OrigLen, want, len(frame), frame[:min(len(frame), 64)])
		}
	})
}
