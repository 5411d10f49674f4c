package probe_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/scantest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/testbed"
)

// probeAnswer is how a target answers a probe: the reply frame, and the
// reply kind the scan program must report (enum reply_kind).
type probeAnswer struct {
	name  string
	reply func(t *testing.T, probe gopacket.Packet) testpkt.Frame
	kind  uint8
}

// TestScanProgramAnswersEngineProbes closes the loop between the two halves
// that must agree: probe's templates (Go) and the scan program's
// validation (BPF). Each probe kind of each family is built by probe/,
// answered the way a real target answers it (the testbed's own UDP
// services for UDP), and the answer must be accepted, once; the same answer
// with one cookie bit flipped must not.
func TestScanProgramAnswersEngineProbes(t *testing.T) {
	router6 := netip.MustParseAddr("2001:2:0:ffff::fe")
	tests := []struct {
		name    string
		target  netip.Addr
		port    uint16 // 0: echo
		proto   uint8
		answers []probeAnswer
	}{
		{"TCP/ipv4", scantest.Target4, 443, targets.ProtoTCP, []probeAnswer{synAck, synRst}},
		{"TCP/ipv6", scantest.Target6, 443, targets.ProtoTCP, []probeAnswer{synAck, synRst, icmpErrorFrom(router6, 1, 1, 3)}},
		{"UDP DNS/ipv4", scantest.Target4, 53, targets.ProtoUDP, []probeAnswer{serviceAnswer, portUnreachable}},
		{"UDP DNS/ipv6", scantest.Target6, 53, targets.ProtoUDP, []probeAnswer{serviceAnswer, portUnreachable}},
		{"UDP NTP/ipv6", scantest.Target6, 123, targets.ProtoUDP, []probeAnswer{serviceAnswer, portUnreachable}},
		{"UDP generic/ipv6", scantest.Target6, 7, targets.ProtoUDP, []probeAnswer{serviceAnswer, icmpErrorFrom(router6, 1, 3, 3)}},
		{"echo/ipv4", scantest.Target4, 0, targets.ProtoICMP, []probeAnswer{echoReply, icmpErrorFrom(scantest.Router4, 3, 1, 3)}},
		{"echo/ipv6", scantest.Target6, 0, targets.ProtoICMP, []probeAnswer{echoReply, icmpErrorFrom(router6, 1, 0, 3)}},
	}
	buf := make([]byte, probe.MaxFrame)
	for _, tc := range tests {
		us := scantest.Scanner4
		if tc.target.Is6() {
			us = scantest.Scanner6
		}
		var n int
		switch tc.proto {
		case targets.ProtoTCP:
			n = probe.NewSYN(testpkt.SrcMAC, testpkt.DstMAC, us, 40001, scantest.Key).Fill(buf, tc.target, tc.port)
		case targets.ProtoUDP:
			tmpl := probe.NewUDP(testpkt.SrcMAC, testpkt.DstMAC, us, 40000, 40255, probe.PayloadFor(tc.port), scantest.Key)
			n = tmpl.Fill(buf, tc.target, tc.port)
		default:
			n = probe.NewEcho(testpkt.SrcMAC, testpkt.DstMAC, us, scantest.Key).Fill(buf, tc.target)
		}
		probe := gopacket.NewPacket(append([]byte(nil), buf[:n]...), layers.LayerTypeEthernet, gopacket.Default)
		for _, a := range tc.answers {
			t.Run(tc.name+"/"+a.name, func(t *testing.T) {
				s := scantest.LoadUDP(t)
				reply := testpkt.Build(a.reply(t, probe))
				if got := scantest.Run(t, s, reply); got != scantest.XDPDrop {
					t.Fatalf("verdict %d, want drop (a reply to our probe):\n%s", got, gopacket.NewPacket(reply, layers.LayerTypeEthernet, gopacket.Default))
				}
				events := scantest.Drain(t, s)
				if len(events) != 1 || events[0].Kind != a.kind || events[0].Port != tc.port || events[0].Family != family(tc.target) {
					t.Fatalf("events %+v, want one of kind %d for port %d", events, a.kind, tc.port)
				}
				if got := eventAddr(events[0].Family, events[0].Addr); got != tc.target {
					t.Fatalf("event names %s, want %s", got, tc.target)
				}

				// The same answer to a probe whose cookie differs by one bit.
				s = scantest.LoadUDP(t)
				forged := append([]byte(nil), probe.Data()...)
				flipCookieBit(forged, probe)
				reply = testpkt.Build(a.reply(t, gopacket.NewPacket(forged, layers.LayerTypeEthernet, gopacket.Default)))
				if got := scantest.Run(t, s, reply); got != scantest.XDPPass {
					t.Fatalf("answer to a forged cookie: verdict %d, want pass", got)
				}
				if events := scantest.Drain(t, s); len(events) != 0 {
					t.Fatalf("answer to a forged cookie reported: %+v", events)
				}
			})
		}
	}
}

func family(a netip.Addr) uint8 {
	if a.Is6() {
		return 6
	}
	return 4
}

func eventAddr(family uint8, a [16]byte) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(a)
}

// flipCookieBit changes one cookie bit the probe carries: bit 8 of the TCP
// sequence number or of the echo's id:seq (not bit 0: a RST may acknowledge
// the cookie itself, so cookie^1 + 1 can be the cookie), or the UDP source
// port's lowest bit (the cookie chooses the port). Checksums are not fixed:
// nobody checks a quote's.
func flipCookieBit(frame []byte, probe gopacket.Packet) {
	l4 := len(frame) - len(probe.NetworkLayer().LayerPayload())
	if _, ok := probe.TransportLayer().(*layers.UDP); ok {
		frame[l4+1] ^= 1
		return
	}
	frame[l4+6] ^= 1
}

// addresses returns the probe's source (us) and destination (the target).
func addresses(probe gopacket.Packet) (us, target netip.Addr) {
	us, _ = netip.AddrFromSlice(probe.NetworkLayer().NetworkFlow().Src().Raw())
	target, _ = netip.AddrFromSlice(probe.NetworkLayer().NetworkFlow().Dst().Raw())
	return us, target
}

// tcpAnswer is the target's answer to a SYN with the given flags.
func tcpAnswer(flags string) func(t *testing.T, probe gopacket.Packet) testpkt.Frame {
	return func(t *testing.T, probe gopacket.Packet) testpkt.Frame {
		syn := probe.Layer(layers.LayerTypeTCP).(*layers.TCP)
		us, target := addresses(probe)
		return testpkt.Frame{Src: target, Dst: us, TTL: 64,
			L4: testpkt.TCP(uint16(syn.DstPort), uint16(syn.SrcPort), 0x1000, syn.Seq+1, flags)}
	}
}

var (
	// IP target.443 > us.40001: Flags [S.], ack cookie+1
	synAck = probeAnswer{"SYN-ACK", tcpAnswer("SA"), 1}
	// IP target.443 > us.40001: Flags [R.], ack cookie+1
	synRst = probeAnswer{"RST", tcpAnswer("RA"), 2}
	// IP target.53 > us.sport: the testbed's service's own reply
	serviceAnswer = probeAnswer{"service reply", func(t *testing.T, probe gopacket.Packet) testpkt.Frame {
		udp := probe.Layer(layers.LayerTypeUDP).(*layers.UDP)
		payload := testbed.Answer(uint16(udp.DstPort), udp.Payload, make([]byte, 2048))
		if payload == nil {
			t.Fatalf("the testbed's service on port %d ignores the probe's payload % x", udp.DstPort, udp.Payload)
		}
		us, target := addresses(probe)
		return testpkt.Frame{Src: target, Dst: us, TTL: 64,
			L4: &layers.UDP{SrcPort: udp.DstPort, DstPort: udp.SrcPort}, Payload: payload}
	}, 1}
	// IP target > us: ICMP target udp port P unreachable (ICMPv6 unreachable port)
	portUnreachable = probeAnswer{"port unreachable", func(t *testing.T, probe gopacket.Packet) testpkt.Frame {
		_, target := addresses(probe)
		if target.Is6() {
			return icmpErrorFrom(target, 1, 4, 2).reply(t, probe)
		}
		return icmpErrorFrom(target, 3, 3, 2).reply(t, probe)
	}, 2}
	// IP target > us: ICMP echo reply (ICMP6, echo reply), same id and seq
	echoReply = probeAnswer{"echo reply", func(t *testing.T, probe gopacket.Packet) testpkt.Frame {
		us, target := addresses(probe)
		l4 := probe.NetworkLayer().LayerPayload()
		if target.Is6() {
			return testpkt.Frame{Src: target, Dst: us, TTL: 64,
				L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(129, 0)}, Payload: l4[4:8]}
		}
		return testpkt.Frame{Src: target, Dst: us, TTL: 64, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0),
			Id: uint16(l4[4])<<8 | uint16(l4[5]), Seq: uint16(l4[6])<<8 | uint16(l4[7])}}
	}, 4}
)

// icmpErrorFrom is an ICMP or ICMPv6 error of type/code sent by from,
// quoting the whole probe, reported as kind.
func icmpErrorFrom(from netip.Addr, typ, code, kind uint8) probeAnswer {
	return probeAnswer{fmt.Sprintf("icmp %d/%d from %s", typ, code, from),
		func(t *testing.T, probe gopacket.Packet) testpkt.Frame {
			us, _ := addresses(probe)
			quote := probe.Data()[14:]
			if from.Is6() {
				return testpkt.Frame{Src: from, Dst: us, TTL: 62,
					L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}, Payload: append(make([]byte, 4), quote...)}
			}
			return testpkt.Frame{Src: from, Dst: us, TTL: 62,
				L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, Payload: quote}
		}, kind}
}
