package testpkt

import (
	"math/rand/v2"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// Named is one frame of the corpus with what it is.
type Named struct {
	Name  string
	Frame []byte
}

// Corpus is one frame of every kind the tests build (the filter tests'
// frames, the capture tests' TCP flag classes, VLAN stacks, IPv4 options and
// fragments, IPv6 extension headers, ICMP and ICMPv6 messages and errors,
// ARP, LLDP): the fixed input of the text output's golden tests against
// tcpdump and of the offline filter tests.
func Corpus() []Named {
	a := netip.MustParseAddr
	http := append([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), make([]byte, 4)...)
	synOpts := TCP(40003, 22, 1000, 0, "S")
	synOpts.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0x30, 0x39, 0, 0, 0, 0}},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}
	ackTS := TCP(40003, 22, 1001, 5001, "A")
	ackTS.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0x30, 0x3a, 0, 0, 0x10, 0x01}},
	}
	urg := TCP(40004, 80, 7, 8, "A")
	urg.URG, urg.Urgent, urg.ECE, urg.CWR = true, 1, true, true
	ipOpts := []layers.IPv4Option{{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}, {OptionType: 0}}
	quoteUDP := Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), IPID: 4242, L4: &layers.UDP{SrcPort: 33000, DstPort: 40000}, Payload: make([]byte, 10)})[14:]
	quoteTCP := Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.8"), IPID: 7, L4: TCP(40001, 8080, 99, 0, "S")})[14:]
	quoteUDP6 := Build(Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: &layers.UDP{SrcPort: 33000, DstPort: 123}, Payload: make([]byte, 8)})[14:]
	ns := append([]byte{0, 0, 0, 0}, a("2001:2::1:7").AsSlice()...) // reserved, target
	ns = append(ns, 1, 1, 2, 0, 0, 0, 0, 1)                         // source link-layer address option
	ra := []byte{64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}         // hop limit, flags, lifetime 1800, reachable, retrans

	out := []Named{
		{"tcp syn", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: TCP(40001, 443, 1, 0, "S")})},
		{"tcp syn-ack", Build(Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: TCP(443, 40001, 1, 2, "SA")})},
		{"tcp rst-ack", Build(Frame{Src: a("198.18.1.9"), Dst: a("198.19.0.1"), L4: TCP(80, 40002, 0, 2, "RA")})},
		{"tcp rst", Build(Frame{Src: a("198.18.1.9"), Dst: a("198.19.0.1"), L4: TCP(81, 40002, 77, 0, "R")})},
		{"tcp psh-ack http", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.1"), L4: TCP(33000, 80, 5, 6, "PA"), Payload: http})},
		{"tcp fin-ack", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.1"), L4: TCP(33001, 8080, 3000000000, 4000000000, "FA")})},
		{"tcp ack", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.6.4"), L4: TCP(40000, 81, 3, 1, "A")})},
		{"tcp syn with options", Build(Frame{Src: a("198.19.0.2"), Dst: a("198.18.0.22"), IPID: 555, L4: synOpts})},
		{"tcp syn-ack, same conversation", Build(Frame{Src: a("198.18.0.22"), Dst: a("198.19.0.2"), L4: TCP(22, 40003, 5000, 1001, "SA")})},
		{"tcp ack with timestamps", Build(Frame{Src: a("198.19.0.2"), Dst: a("198.18.0.22"), L4: ackTS, Payload: []byte("SSH-2.0-x\r\n")})},
		{"tcp urg ece cwr", Build(Frame{Src: a("198.19.0.3"), Dst: a("198.18.0.1"), L4: urg})},
		{"udp", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.6.1"), L4: &layers.UDP{SrcPort: 33000, DstPort: 5000}, Payload: make([]byte, 18)})},
		{"udp high ports", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.53"), L4: &layers.UDP{SrcPort: 40000, DstPort: 30000}, Payload: make([]byte, 30)})},
		{"vlan udp", Build(Frame{VLANs: []uint16{100}, Src: a("198.19.0.1"), Dst: a("198.18.0.53"), L4: &layers.UDP{SrcPort: 1500, DstPort: 1500}})},
		{"qinq tcp syn", Build(Frame{VLANs: []uint16{10, 100}, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: TCP(40001, 443, 1, 0, "S")})},
		{"icmp port unreachable", Build(Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, Payload: quoteUDP})},
		{"icmp admin prohibited", Build(Frame{Src: a("198.18.0.1"), Dst: a("198.19.0.1"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 13)}, Payload: quoteTCP})},
		{"icmp host unreachable", Build(Frame{Src: a("198.18.0.1"), Dst: a("198.19.0.1"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)}, Payload: quoteTCP})},
		{"icmp echo request", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 4660, Seq: 7}, Payload: make([]byte, 56)})},
		{"icmp echo reply", Build(Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 4660, Seq: 7}, Payload: make([]byte, 56)})},
		{"icmp time exceeded", Build(Frame{Src: a("198.18.0.254"), Dst: a("198.19.0.1"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(11, 0)}, Payload: quoteTCP})},
		{"ipv4 options", Build(Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), IPOptions: ipOpts, L4: TCP(40001, 443, 1, 0, "S")})},
		{"ipv4 later fragment", Build(Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), IPID: 99, FragOffset: 1, Proto: layers.IPProtocolUDP, Payload: make([]byte, 40)})},
		{"ipv4 first fragment", Build(Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), IPID: 98, MoreFragments: true, L4: &layers.UDP{SrcPort: 33001, DstPort: 33002}, Payload: make([]byte, 40)})},
		{"gre", Build(Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), TTL: 30, Proto: 47, Payload: make([]byte, 200)})},
		{"ipv6 udp", Build(Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: &layers.UDP{SrcPort: 33000, DstPort: 6000}, Payload: make([]byte, 12)})},
		{"ipv6 tcp syn", Build(Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: TCP(40001, 443, 1, 0, "S")})},
		{"ipv6 hop-by-hop tcp syn-ack", Build(Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), IPv6Ext: []Ext{HopByHop()}, L4: TCP(443, 40001, 1, 2, "SA")})},
		{"ipv6 dest-opts udp", Build(Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), IPv6Ext: []Ext{DestOpts()}, L4: &layers.UDP{SrcPort: 33000, DstPort: 6000}, Payload: make([]byte, 4)})},
		{"ipv6 fragment", Build(Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), IPv6Ext: []Ext{Fragment6(0, true)}, L4: &layers.UDP{SrcPort: 33000, DstPort: 6000}, Payload: make([]byte, 16)})},
		{"icmp6 echo request", Build(Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, Payload: []byte{0x12, 0x34, 0, 9, 1, 2, 3, 4}})},
		{"icmp6 echo reply", Build(Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(129, 0)}, Payload: []byte{0x12, 0x34, 0, 9, 1, 2, 3, 4}})},
		{"icmp6 port unreachable", Build(Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}, Payload: append([]byte{0, 0, 0, 0}, quoteUDP6...)})},
		{"icmp6 neighbor solicitation", Build(Frame{DstMAC: []byte{0x33, 0x33, 0xff, 1, 0, 7}, Src: a("2001:2::1"), Dst: a("ff02::1:ff01:7"), TTL: 255, L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}, Payload: ns})},
		{"icmp6 router advertisement", Build(Frame{DstMAC: []byte{0x33, 0x33, 0, 0, 0, 1}, Src: a("fe80::1"), Dst: a("ff02::1"), TTL: 255, L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(134, 0)}, Payload: ra})},
	}
	arp := make([]byte, 60)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1,
		2, 0, 0, 0, 0, 1, 198, 19, 0, 1, 0, 0, 0, 0, 0, 0, 198, 19, 0, 2})
	arpReply := make([]byte, 60)
	copy(arpReply, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2,
		2, 0, 0, 0, 0, 2, 198, 19, 0, 2, 2, 0, 0, 0, 0, 1, 198, 19, 0, 1})
	lldp := make([]byte, 60)
	copy(lldp, []byte{0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 0, 0, 0, 0, 1, 0x88, 0xcc})
	return append(out, Named{"arp request", arp}, Named{"arp reply", arpReply}, Named{"lldp", lldp})
}

// Mutated is every corpus frame followed by three of its prefixes and three
// copies with a byte changed past the Ethernet header (a fixed seed): the
// cut and damaged frames a filter and a printer meet on a real link.
func Mutated() [][]byte {
	var out [][]byte
	rng := rand.New(rand.NewPCG(22, 6))
	for _, n := range Corpus() {
		out = append(out, n.Frame)
		for range 3 {
			out = append(out, n.Frame[:14+rng.IntN(len(n.Frame)-13)])
			m := append([]byte(nil), n.Frame...)
			m[14+rng.IntN(len(m)-14)] = byte(rng.Uint32())
			out = append(out, m)
		}
	}
	return out
}

// Filters are tcpdump expressions over every protocol of the corpus and
// its headers' fields: the offline tests compare their counts with
// tcpdump -r's.
var Filters = []string{
	"", "tcp", "udp", "icmp", "icmp6", "arp", "ip", "ip6", "vlan", "vlan 100", "vlan and tcp",
	"tcp port 443", "udp dst port 5000", "port 6000 or port 5000", "portrange 33000-34000",
	"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)", "tcp[tcpflags] & tcp-rst != 0",
	"host 198.18.0.7", "src net 198.18.0.0/16", "dst host 198.19.0.1", "net 2001:2::/64", "ip6 and tcp",
	"ip[8] < 64", "ip[6:2] & 0x1fff != 0", "ip proto 47", "greater 100", "less 64",
	"ether broadcast", "ether multicast", "ether src 02:58:53:00:00:01", "not ip and not ip6",
	"icmp[icmptype] == icmp-echo", "icmp[icmptype] == icmp-unreach", "icmp6 and ip6[40] == 128",
	"(tcp or udp) and not port 443", "len >= 80 and udp", "ip and ip[0] & 0xf > 5", "tcp[13] == 0x12",
}
