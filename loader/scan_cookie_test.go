package loader_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

// sentProbe is the IP packet (no Ethernet header) of our probe from us to
// target as the probe package's templates build it: what an ICMP error
// quotes and what an answer must echo. proto 6 is a SYN from sport, 17 a
// UDP probe (source port from its cookie), 1 or 58 an echo request.
func sentProbe(us, target netip.Addr, proto uint8, sport, dport uint16) []byte {
	buf := make([]byte, probe.MaxFrame)
	var n int
	switch proto {
	case 6:
		n = probe.NewSYN(testpkt.SrcMAC, testpkt.DstMAC, us, sport, testKey).Fill(buf, target, dport)
	case 17:
		n = probe.NewUDP(testpkt.SrcMAC, testpkt.DstMAC, us, 40000, 40255, probe.PayloadFor(dport), testKey).Fill(buf, target, dport)
	default:
		n = probe.NewEcho(testpkt.SrcMAC, testpkt.DstMAC, us, testKey).Fill(buf, target)
	}
	return buf[14:n]
}

// ipHeaderLen is the length of the probe's IP header (no options, no
// extension headers).
func ipHeaderLen(a netip.Addr) int {
	if a.Is4() {
		return 20
	}
	return 40
}

// udpPayloadOf is the payload of our UDP probe to target:dport, as sent.
func udpPayloadOf(us, target netip.Addr, dport uint16) (sport uint16, payload []byte) {
	ip := sentProbe(us, target, 17, 0, dport)
	l4 := ip[ipHeaderLen(us):]
	return binary.BigEndian.Uint16(l4), l4[8:]
}

// svcAnswer is what the service on port answers to our request req:
// DNS copies ID and question, NTP puts our transmit timestamp in its
// origin, SNMP returns our request-id (its lengths in long form when long
// is set, as some agents send them); the others echo nothing.
func svcAnswer(port uint16, req []byte, long bool) []byte {
	switch port {
	case 53:
		b := append([]byte(nil), req...)
		b[2] = 0x84 // QR AA
		return b
	case 123:
		b := make([]byte, 48)
		b[0] = 0x24 // VN 4, mode 4 (server)
		copy(b[24:32], req[40:48])
		return b
	case 161:
		// Response: SEQUENCE { 1, "public", GetResponse { request-id, 0, 0, {} } }
		pdu := append([]byte{0x02, 0x04}, req[17:21]...)
		pdu = append(pdu, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00)
		tlv := func(tag byte, body []byte) []byte {
			if long {
				return append([]byte{tag, 0x82, byte(len(body) >> 8), byte(len(body))}, body...)
			}
			return append([]byte{tag, byte(len(body))}, body...)
		}
		inner := append([]byte{0x02, 0x01, 0x01, 0x04, 0x06}, "public"...)
		inner = append(inner, tlv(0xa2, pdu)...)
		return tlv(0x30, inner)
	case 1900:
		return []byte("HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n")
	}
	return []byte("hello")
}

// echoedOffsets are the bytes of a service's answer payload that carry cookie
// bits, each with a mask of the bits that do.
func echoedOffsets(port uint16, long bool) map[int]byte {
	m := map[int]byte{}
	switch port {
	case 53:
		m[0], m[1] = 0xff, 0xff
		for i := 0; i < 11; i++ {
			o := 13 + i
			if i >= 7 {
				o = 14 + i
			}
			m[o] = 0x20
		}
	case 123:
		for o := 24; o < 32; o++ {
			m[o] = 0xff
		}
	case 161:
		at := 17 // 30 LL 02 01 01 04 06 public a2 LL 02 04 [id]
		if long {
			at = 21
		}
		for o := at; o < at+4; o++ {
			m[o] = 0xff
		}
	}
	return m
}

var udpServicePorts = []uint16{53, 123, 161, 1900, 9999}

// TestScanProgramRefusesOneFieldForgeries: for every UDP payload kind, and
// for ICMP errors quoting every probe kind, in both families, the right
// answer is accepted and the same answer with any one cookie-carrying
// field (or a single bit of it) wrong is refused.
func TestScanProgramRefusesOneFieldForgeries(t *testing.T) {
	type forgery struct {
		name  string
		frame []byte
	}
	type tc struct {
		name   string
		valid  []byte
		forged []forgery
	}
	var cases []tc
	for _, fam := range []struct{ us, target netip.Addr }{{scanner4, target4}, {scanner6, target6}} {
		us, target := fam.us, fam.target
		// UDP answers from the service itself.
		for _, port := range udpServicePorts {
			for _, long := range []bool{false, true} {
				if long && port != 161 {
					continue
				}
				sport, req := udpPayloadOf(us, target, port)
				build := func(dport uint16, pay []byte) []byte {
					return testpkt.Build(testpkt.Frame{Src: target, Dst: us, TTL: 63,
						L4: udpLayer(port, dport), Payload: pay})
				}
				ans := svcAnswer(port, req, long)
				c := tc{name: fmt.Sprintf("udp %d long=%v %s", port, long, target), valid: build(sport, ans)}
				// The source port: every other port of the range would
				// be a blind guess.
				c.forged = append(c.forged, forgery{"our port +1", build(40000+(sport-40000+1)%256, ans)})
				for off, mask := range echoedOffsets(port, long) {
					for bit := 0; bit < 8; bit++ {
						if mask>>bit&1 == 0 {
							continue
						}
						f := append([]byte(nil), ans...)
						f[off] ^= 1 << bit
						c.forged = append(c.forged, forgery{fmt.Sprintf("payload byte %d bit %d", off, bit), build(sport, f)})
					}
				}
				if port == 53 || port == 123 || port == 161 {
					c.forged = append(c.forged, forgery{"answer cut before the echo", build(sport, ans[:8])})
				}
				cases = append(cases, c)
			}
		}
		// ICMP errors quoting each probe kind.
		icmpProto := uint8(1)
		if us.Is6() {
			icmpProto = 58
		}
		quoted := []struct {
			name         string
			proto        uint8
			sport, dport uint16
		}{{"syn", 6, 40001, 443}, {"echo", icmpProto, 0, 0}}
		for _, port := range udpServicePorts {
			quoted = append(quoted, struct {
				name         string
				proto        uint8
				sport, dport uint16
			}{fmt.Sprintf("udp %d", port), 17, 0, port})
		}
		for _, q := range quoted {
			ip := sentProbe(us, target, q.proto, q.sport, q.dport)
			hl := ipHeaderLen(us)
			ip = ip[:hl+8] // what RFC 792 promises a quote holds
			errFrame := func(quote []byte) []byte {
				typ, code := uint8(3), uint8(3)
				if us.Is6() {
					typ, code = 1, 4
				}
				if q.proto != 17 {
					code = 13 // admin prohibited: a filter
					if us.Is6() {
						code = 1
					}
				}
				return testpkt.Build(quotingErrorRaw(target, us, typ, code, quote))
			}
			c := tc{name: fmt.Sprintf("icmp error quoting %s %s", q.name, target), valid: errFrame(ip)}
			for _, off := range quoteCheckedOffsets(us, q.proto) {
				for _, x := range []byte{0x01, 0x80} {
					f := append([]byte(nil), ip...)
					f[off] ^= x
					c.forged = append(c.forged, forgery{fmt.Sprintf("quote byte %d ^ %#x", off, x), errFrame(f)})
				}
			}
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := loadScanUDP(t)
			for _, f := range c.forged {
				if v := run(t, s, f.frame); v != xdpPass {
					t.Errorf("forgery %q: verdict %d, want pass (% x)", f.name, v, f.frame)
				}
				if ev := drain(t, s); len(ev) != 0 {
					t.Errorf("forgery %q reported %d events", f.name, len(ev))
				}
			}
			if len(c.forged) == 0 && c.name[:3] == "icm" {
				t.Fatal("no forgeries built")
			}
			// The real answer, after every forgery, still gets through.
			if v := run(t, s, c.valid); v != xdpDrop {
				t.Fatalf("the valid answer: verdict %d, want drop (% x)", v, c.valid)
			}
			if ev := drain(t, s); len(ev) != 1 {
				t.Fatalf("the valid answer gave %d events, want 1", len(ev))
			}
		})
	}
}

// quoteCheckedOffsets are the bytes of a quoted probe (IP header and 8
// L4 bytes) that carry its identity or cookie bits: addresses, protocol,
// IPv4 ID or IPv6 flow label, and the L4 bytes each kind's check covers.
func quoteCheckedOffsets(us netip.Addr, proto uint8) []int {
	var offs []int
	hl := ipHeaderLen(us)
	if us.Is4() {
		offs = append(offs, 4, 5, 9)
		for o := 12; o < 20; o++ {
			offs = append(offs, o)
		}
	} else {
		offs = append(offs, 2, 3, 6) // flow label, next header
		for o := 8; o < 40; o++ {
			offs = append(offs, o)
		}
	}
	switch proto {
	case 6, 17: // ports, then sequence or length and checksum
		for o := 0; o < 8; o++ {
			offs = append(offs, hl+o)
		}
	default: // type, then id:seq
		offs = append(offs, hl, hl+4, hl+5, hl+6, hl+7)
	}
	return offs
}

// TestUDPEchoTableMatchesPayloads: the echo table the program gets
// describes every payload, so a quote of any UDP probe can be checked on
// its checksum.
func TestUDPEchoTableMatchesPayloads(t *testing.T) {
	e := probe.UDPEchoes()
	for _, p := range probe.Payloads {
		for _, port := range p.Ports {
			if got := e[port]; got.Kind != p.Echo || int(got.Len) != len(p.Data) {
				t.Errorf("port %d: %+v, want kind %d length %d", port, got, p.Echo, len(p.Data))
			}
		}
	}
	if _, ok := e[9999]; ok || loader.EchoNone != 0 {
		t.Error("a port without a payload must have no entry: the program sends it the empty payload")
	}
}

func udpLayer(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

// quotingErrorRaw is from > us: an ICMP (IPv4) or ICMPv6 error of
// type/code quoting the IP bytes quote as they are.
func quotingErrorRaw(from, us netip.Addr, typ, code uint8, quote []byte) testpkt.Frame {
	if from.Is4() {
		return testpkt.Frame{Src: from, Dst: us, TTL: 62,
			L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, Payload: quote}
	}
	return testpkt.Frame{Src: from, Dst: us, TTL: 62,
		L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}, Payload: append(make([]byte, 4), quote...)}
}

// TestScanProgramReportsEachStateClassOnce: the dedup table is keyed by
// pair and state class, so an open answer after a closed one (or the
// reverse) still reaches user space, which resolves the conflict; the same
// class again is a duplicate.
func TestScanProgramReportsEachStateClassOnce(t *testing.T) {
	s := loadScanUDP(t)
	sport, req := udpPayloadOf(scanner4, target4, 53)
	open := testpkt.Build(testpkt.Frame{Src: target4, Dst: scanner4, L4: udpLayer(53, sport), Payload: svcAnswer(53, req, false)})
	closed := testpkt.Build(quotingErrorRaw(target4, scanner4, 3, 3, sentProbe(scanner4, target4, 17, 0, 53)[:28]))
	for i, step := range []struct {
		frame  []byte
		events int
	}{{closed, 1}, {open, 1}, {closed, 0}, {open, 0}} {
		if v := run(t, s, step.frame); v != xdpDrop {
			t.Fatalf("step %d: verdict %d, want drop", i, v)
		}
		if ev := drain(t, s); len(ev) != step.events {
			t.Fatalf("step %d: %d events, want %d", i, len(ev), step.events)
		}
	}
	expect(t, "duplicates", counters(t, s).Duplicates, 2)
}
