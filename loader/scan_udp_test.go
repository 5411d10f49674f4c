package loader_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/scantest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

var router4 = scantest.Router4

// loadScanUDP is loadScan with probe's UDP echo table, as a scan loads it.
func loadScanUDP(t testing.TB) *loader.Scan {
	t.Helper()
	return scantest.LoadUDP(t)
}

func udpCookie(us, target netip.Addr, dport uint16) uint32 {
	return testKey.Cookie(us, target, 17, 0, dport)
}

// udpSport is probe's source port for the UDP probe with cookie c (40000-40255).
func udpSport(c uint32) uint16 { return 40000 + uint16(c%256) }

// udpHash is the whole keyed hash of a UDP probe (cookie bits beyond the
// source port: IP ID, DNS ID and case, NTP timestamp, SNMP request-id).
func udpHash(us, target netip.Addr, dport uint16) uint64 {
	return testKey.Hash(us, target, 17, 0, dport)
}

// ipID is the IP ID of an IPv4 probe with hash h, or an IPv6 probe's
// flow label (testpkt.Frame.IPID sets either).
func ipID(_ netip.Addr, h uint64) uint16 {
	return probe.IPID(h)
}

// udpProbe is our probe us.sport > target.dport as sent (IP ID and
// payload included), for quoting.
func udpProbe(us, target netip.Addr, dport uint16) testpkt.Frame {
	h := udpHash(us, target, dport)
	return testpkt.Frame{Src: us, Dst: target, IPID: ipID(target, h), Payload: probe.PayloadFor(dport).Request(h),
		L4: &layers.UDP{SrcPort: layers.UDPPort(udpSport(uint32(h))), DstPort: layers.UDPPort(dport)}}
}

// udpReply is target.sport > us.dport carrying payload.
func udpReply(sport, dport uint16, payload []byte) testpkt.Frame {
	return testpkt.Frame{Src: target4, Dst: scanner4, TTL: 63,
		L4: &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, Payload: payload}
}

// dnsAnswer is a DNS response to our query with hash h: its ID and
// question as asked, flags QR AA, no answers.
func dnsAnswer(h uint64) []byte {
	b := probe.PayloadFor(53).Request(h)
	b[2] = 0x84
	return b
}

// ntpAnswer is an NTP server reply whose origin timestamp is ts.
func ntpAnswer(ts uint64) []byte {
	b := make([]byte, 48)
	b[0] = 0x24 // VN 4, mode 4 (server)
	binary.BigEndian.PutUint64(b[24:], ts)
	return b
}

// quotingError is icmpError for either family: an ICMPv6 error carries
// 4 unused bytes before its quote.
func quotingError(from netip.Addr, typ, code uint8, probe testpkt.Frame, n int) testpkt.Frame {
	if from.Is4() {
		return icmpError(from, typ, code, probe, n)
	}
	quote := testpkt.Build(probe)[14:]
	if n > 0 {
		quote = quote[:n]
	}
	return testpkt.Frame{Src: from, Dst: probe.Src, TTL: 62,
		L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}, Payload: append(make([]byte, 4), quote...)}
}

// icmpError is from > us: ICMP type/code quoting the first n bytes of the
// IP packet in probe (all of it when n is 0).
func icmpError(from netip.Addr, typ, code uint8, probe testpkt.Frame, n int) testpkt.Frame {
	quote := testpkt.Build(probe)[14:]
	if n > 0 {
		quote = quote[:n]
	}
	return testpkt.Frame{Src: from, Dst: probe.Src, TTL: 62,
		L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, Payload: quote}
}

func TestScanProgramUDPAndICMP(t *testing.T) {
	h53 := udpHash(scanner4, target4, 53)
	c53 := uint32(h53)
	h123 := udpHash(scanner4, target4, 123)
	c123 := uint32(h123)
	c9999 := udpCookie(scanner4, target4, 9999)
	hEcho := testKey.Hash4(scanner4.As4(), target4.As4(), 1, 0, 0)
	cEcho := uint32(hEcho)
	hSYN := testKey.Hash4(scanner4.As4(), target4.As4(), 6, 40001, 443)
	cSYN := uint32(hSYN)
	syn := testpkt.Frame{Src: scanner4, Dst: target4, IPID: probe.IPID(hSYN), L4: testpkt.TCP(40001, 443, cSYN, 0, "S")}
	echoRequest := func(c uint32) testpkt.Frame {
		return testpkt.Frame{Src: scanner4, Dst: target4, IPID: probe.IPID(hEcho),
			L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: uint16(c >> 16), Seq: uint16(c)}}
	}
	echoReply := func(c uint32) testpkt.Frame {
		return testpkt.Frame{Src: target4, Dst: scanner4, TTL: 64,
			L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: uint16(c >> 16), Seq: uint16(c)}}
	}
	v6probe := udpProbe(scanner6, target6, 53)

	type want struct {
		kind, proto, icmpType, icmpCode uint8
		addr, from                      netip.Addr
		port                            uint16
	}
	tests := []struct {
		name    string
		frame   testpkt.Frame
		verdict uint32
		event   *want
		bad     uint64 // invalid_cookie expected
	}{
		// 198.18.0.7.53 > 198.19.0.1.sport: 0x.. 0/0/0 (DNS answer, ID = cookie)
		{name: "DNS answer echoing the cookie", frame: udpReply(53, udpSport(c53), dnsAnswer(h53)), verdict: xdpDrop,
			event: &want{kind: 1, proto: 17, addr: target4, from: target4, port: 53}},
		// 198.18.0.7.53 > 198.19.0.1.sport: DNS answer with another ID
		{name: "DNS answer with a wrong ID", frame: udpReply(53, udpSport(c53), dnsAnswer(h53^1<<48)), verdict: xdpPass, bad: 1},
		// 198.18.0.7.53 > 198.19.0.1.sport: 1 byte: too short to carry the ID
		{name: "DNS answer too short for the ID", frame: udpReply(53, udpSport(c53), []byte{1}), verdict: xdpPass, bad: 1},
		// 198.18.0.7.53 > 198.19.0.1.(sport+1): right ID, wrong port
		{name: "UDP reply to the wrong source port", frame: udpReply(53, udpSport(c53)+1, dnsAnswer(h53)), verdict: xdpPass, bad: 1},
		// 198.18.0.7.123 > 198.19.0.1.sport: NTPv4, Server, origin ts fraction = cookie
		{name: "NTP reply echoing the cookie", frame: udpReply(123, udpSport(c123), ntpAnswer(h123)), verdict: xdpDrop,
			event: &want{kind: 1, proto: 17, addr: target4, from: target4, port: 123}},
		// 198.18.0.7.123 > 198.19.0.1.sport: NTPv4 reply with another origin timestamp
		{name: "NTP reply with a wrong origin", frame: udpReply(123, udpSport(c123), ntpAnswer(h123+1)), verdict: xdpPass, bad: 1},
		// 198.18.0.7.123 > 198.19.0.1.sport: NTP reply cut before the origin timestamp
		{name: "NTP reply cut short", frame: udpReply(123, udpSport(c123), ntpAnswer(h123)[:30]), verdict: xdpPass, bad: 1},
		// 198.18.0.7.9999 > 198.19.0.1.sport: UDP, length 5 (a service we have no payload for)
		{name: "UDP reply on a generic port", frame: udpReply(9999, udpSport(c9999), []byte("hello")), verdict: xdpDrop,
			event: &want{kind: 1, proto: 17, addr: target4, from: target4, port: 9999}},
		// 198.18.0.7.9999 > 198.19.0.1.39999: outside our ports: someone else's
		{name: "UDP outside our ports", frame: udpReply(9999, 39999, nil), verdict: xdpPass},
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 53 unreachable
		{name: "port unreachable quoting our UDP probe", frame: icmpError(target4, 3, 3, udpProbe(scanner4, target4, 53), 0),
			verdict: xdpDrop, event: &want{kind: 2, proto: 17, icmpType: 3, icmpCode: 3, addr: target4, from: target4, port: 53}},
		// 198.19.0.254 > 198.19.0.1: ICMP host 198.18.0.7 unreachable (a router's)
		{name: "router's host unreachable", frame: icmpError(router4, 3, 1, udpProbe(scanner4, target4, 161), 0),
			verdict: xdpDrop, event: &want{kind: 3, proto: 17, icmpType: 3, icmpCode: 1, addr: target4, from: router4, port: 161}},
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 53 unreachable, quoting another source port
		{name: "port unreachable quoting a wrong source port", frame: func() testpkt.Frame {
			p := udpProbe(scanner4, target4, 53)
			p.L4.(*layers.UDP).SrcPort++
			return icmpError(target4, 3, 3, p, 0)
		}(), verdict: xdpPass, bad: 1},
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 53 unreachable, quoting a probe from 198.19.0.9
		{name: "quote of someone else's probe", frame: icmpError(target4, 3, 3, udpProbe(netip.MustParseAddr("198.19.0.9"), target4, 53), 0),
			verdict: xdpPass},
		// 198.18.0.7 > 198.19.0.1: ICMP host 198.18.0.7 unreachable - admin prohibited filter, quoting our SYN
		{name: "admin prohibited quoting our SYN", frame: icmpError(target4, 3, 13, syn, 28), verdict: xdpDrop,
			event: &want{kind: 3, proto: 6, icmpType: 3, icmpCode: 13, addr: target4, from: target4, port: 443}},
		// the same, quoting a SYN whose sequence is not the cookie
		{name: "quoted SYN with a wrong sequence", frame: func() testpkt.Frame {
			s := syn
			s.L4 = testpkt.TCP(40001, 443, cSYN+1, 0, "S")
			return icmpError(target4, 3, 13, s, 28)
		}(), verdict: xdpPass, bad: 1},
		// 198.18.0.7 > 198.19.0.1: ICMP echo reply, id:seq = cookie
		{name: "echo reply", frame: echoReply(cEcho), verdict: xdpDrop,
			event: &want{kind: 4, proto: 1, addr: target4, from: target4}},
		// 198.18.0.7 > 198.19.0.1: ICMP echo reply, id:seq = cookie+1
		{name: "echo reply with a wrong cookie", frame: echoReply(cEcho + 1), verdict: xdpPass, bad: 1},
		// 198.18.0.7 > 198.19.0.1: ICMP echo request: someone pinging us
		{name: "echo request to us", frame: func() testpkt.Frame {
			f := echoRequest(cEcho)
			f.Src, f.Dst = target4, scanner4
			return f
		}(), verdict: xdpPass},
		// 198.19.0.254 > 198.19.0.1: ICMP host 198.18.0.7 unreachable, quoting our echo request
		{name: "host unreachable quoting our echo", frame: icmpError(router4, 3, 1, echoRequest(cEcho), 28), verdict: xdpDrop,
			event: &want{kind: 3, proto: 1, icmpType: 3, icmpCode: 1, addr: target4, from: router4}},
		// IP6 2001:2::1:7 > 2001:2::1: ICMP6, destination unreachable, unreachable port, 2001:2::1:7 udp port 53
		{name: "ICMPv6 port unreachable", frame: testpkt.Frame{Src: target6, Dst: scanner6, TTL: 64,
			L4:      &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)},
			Payload: append(make([]byte, 4), testpkt.Build(v6probe)[14:]...)}, verdict: xdpDrop,
			event: &want{kind: 2, proto: 17, icmpType: 1, icmpCode: 4, addr: target6, from: target6, port: 53}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := loadScanUDP(t)
			if got := run(t, s, testpkt.Build(tc.frame)); got != tc.verdict {
				t.Fatalf("verdict %d, want %d", got, tc.verdict)
			}
			c := counters(t, s)
			expect(t, "invalid_cookie", c.BadCookie, tc.bad)
			events := drain(t, s)
			if tc.event == nil {
				if len(events) != 0 {
					t.Fatalf("%d events, want none", len(events))
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("%d events, want 1", len(events))
			}
			e := events[0]
			w := tc.event
			addr, from := netip.AddrFrom16(e.Addr).Unmap(), netip.AddrFrom16(e.From).Unmap()
			if e.Family == 4 {
				addr, from = netip.AddrFrom4([4]byte(e.Addr[:4])), netip.AddrFrom4([4]byte(e.From[:4]))
			}
			if e.Kind != w.kind || e.Proto != w.proto || e.IcmpType != w.icmpType || e.IcmpCode != w.icmpCode ||
				addr != w.addr || from != w.from || e.Port != w.port {
				t.Fatalf("event kind %d proto %d icmp %d/%d %s:%d from %s, want %+v", e.Kind, e.Proto, e.IcmpType, e.IcmpCode,
					addr, e.Port, from, *w)
			}
			expect(t, "matched", c.Matched, 1)
		})
	}
}

// TestScanProgramQuotesCutAtEveryLength cuts the quote of a valid port
// unreachable, ICMP and ICMPv6, at every length: only quotes holding the
// inner IP header and 8 bytes of UDP may match. Then the full quote with a
// wrong inner tuple or cookie must not.
func TestScanProgramQuotesCutAtEveryLength(t *testing.T) {
	tests := []struct {
		name       string
		us, target netip.Addr
		typ, code  uint8
		minQuote   int // inner IP header + 8 bytes
	}{
		// IP 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 53 unreachable
		{"icmp", scanner4, target4, 3, 3, 28},
		// IP6 2001:2::1:7 > 2001:2::1: ICMP6, destination unreachable, unreachable port
		{"icmpv6", scanner6, target6, 1, 4, 48},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := loadScanUDP(t)
			probe := udpProbe(tc.us, tc.target, 53)
			full := len(testpkt.Build(probe)) - 14
			for n := 1; n <= full; n++ {
				verdict := run(t, s, testpkt.Build(quotingError(tc.target, tc.typ, tc.code, probe, n)))
				events := drain(t, s)
				want := uint32(xdpPass)
				if n >= tc.minQuote {
					want = xdpDrop
				}
				if verdict != want {
					t.Fatalf("quote of %d bytes: verdict %d, want %d", n, verdict, want)
				}
				// The first full quote is reported; the longer ones after it
				// are duplicates of the same (address, port).
				if wantEvents := map[bool]int{true: 1, false: 0}[n == tc.minQuote]; len(events) != wantEvents {
					t.Fatalf("quote of %d bytes: %d events, want %d", n, len(events), wantEvents)
				}
			}
			c := counters(t, s)
			expect(t, "bad_quotes", c.BadQuotes, uint64(tc.minQuote-1))
			expect(t, "invalid_cookie", c.BadCookie, 0)

			// Whole quotes of probes that are not ours as sent.
			other := netip.MustParseAddr("198.18.0.8")
			if tc.target.Is6() {
				other = netip.MustParseAddr("2001:2::1:8")
			}
			wrongPort := udpProbe(tc.us, tc.target, 53)
			wrongPort.L4.(*layers.UDP).SrcPort ^= 1
			wrongTarget := udpProbe(tc.us, tc.target, 53)
			wrongTarget.Dst = other // same source port, another target: another cookie
			wrongDport := udpProbe(tc.us, tc.target, 53)
			wrongDport.L4.(*layers.UDP).DstPort = 54
			for name, q := range map[string]testpkt.Frame{"wrong source port": wrongPort, "wrong target": wrongTarget, "wrong port": wrongDport} {
				s := loadScanUDP(t)
				if got := run(t, s, testpkt.Build(quotingError(tc.target, tc.typ, tc.code, q, 0))); got != xdpPass {
					t.Errorf("%s: verdict %d, want pass", name, got)
				}
				if events := drain(t, s); len(events) != 0 {
					t.Errorf("%s: reported %+v", name, events)
				}
			}
		})
	}
}
