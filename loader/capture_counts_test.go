package loader_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
	cbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

// counting is a loaded program with the shared per-CPU counters.
type counting interface {
	Program() *ebpf.Program
	Counters() (loader.Counters, error)
}

// countOne runs frame through p and returns what it counted for it from
// parsing alone.
func countOne(t testing.TB, p counting, frame []byte) loader.Counters {
	t.Helper()
	return parseCounts(runOne(t, p, frame))
}

// runOne runs frame through p and returns every counter's change.
func runOne(t testing.TB, p counting, frame []byte) loader.Counters {
	t.Helper()
	before, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Program().Run(&ebpf.RunOptions{Data: frame}); err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	after, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return after.Sub(before)
}

// parseCounts keeps the counters every program counts the same way, from
// parsing alone (parse_counted in bpf/include/counters.h).
func parseCounts(c loader.Counters) loader.Counters {
	c.Matched, c.BadCookie, c.Duplicates, c.RingLost, c.Dropped, c.TX = 0, 0, 0, 0, 0, 0
	return c
}

// countCorpus covers the capture program's inline classification
// (count_frame) and every way out of it to the full parser.
func countCorpus() map[string][]byte {
	a := netip.MustParseAddr
	udp := func(sport, dport layers.UDPPort) *layers.UDP { return &layers.UDP{SrcPort: sport, DstPort: dport} }
	mss := layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}
	synMSS := testpkt.TCP(40001, 80, 1, 0, "S")
	synMSS.Options = []layers.TCPOption{mss}
	c := map[string][]byte{
		// 198.19.0.1.40000 > 198.18.0.250.9: UDP, length 18
		"udp4": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.250"), L4: udp(40000, 9), Payload: make([]byte, 18)}),
		// 198.19.0.1.40001 > 198.18.0.7.80: Flags [S], options [mss 1460]
		"tcp4 syn with options": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: synMSS}),
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]
		"tcp4 syn-ack": testpkt.Build(reply("SA", 1)),
		// IP6 2001:2::7.443 > 2001:2::1.40001: Flags [R.]
		"tcp6 rst": testpkt.Build(reply6("RA", 1)),
		// IP6 2001:2::1.5353 > 2001:2::1:7.53: UDP
		"udp6": testpkt.Build(testpkt.Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: udp(5353, 53)}),
		// IP (options [RA]) 198.19.0.1.40000 > 198.18.0.250.9: UDP
		"ipv4 options": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.250"), L4: udp(40000, 9),
			IPOptions: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}),
		// IP (flags [+]) 198.19.0.1.40000 > 198.18.0.250.9: UDP, first fragment
		"ipv4 first fragment": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.250"), L4: udp(40000, 9),
			MoreFragments: true, Payload: make([]byte, 16)}),
		// IP (offset 8) 198.18.0.7 > 198.19.0.1: udp fragment
		"ipv4 later fragment": testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), FragOffset: 1,
			Proto: layers.IPProtocolUDP, Payload: make([]byte, 40)}),
		// vlan 100, 198.19.0.1.40000 > 198.18.0.250.9: UDP
		"vlan udp4": testpkt.Build(testpkt.Frame{VLANs: []uint16{100}, Src: a("198.19.0.1"), Dst: a("198.18.0.250"), L4: udp(40000, 9)}),
		// vlan 10, vlan 100, 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]
		"qinq tcp4": testpkt.Build(testpkt.Frame{VLANs: []uint16{10, 100}, Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: testpkt.TCP(443, 40001, 1, 2, "SA")}),
		// IP6 (hbh) 2001:2::1:7.443 > 2001:2::1.40001: Flags [S.]
		"ipv6 hop-by-hop tcp": testpkt.Build(testpkt.Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), IPv6Ext: []testpkt.Ext{testpkt.HopByHop()},
			L4: testpkt.TCP(443, 40001, 1, 2, "SA")}),
		// IP6 (frag 0|16) 2001:2::1:7.53 > 2001:2::1.5353: UDP
		"ipv6 fragment": testpkt.Build(testpkt.Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), IPv6Ext: []testpkt.Ext{testpkt.Fragment6(0, true)},
			L4: udp(53, 5353)}),
		// 198.19.0.1 > 198.18.0.7: ICMP echo request
		"icmp echo": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"),
			L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, Payload: make([]byte, 56)}),
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 161 unreachable
		"icmp error": testpkt.Build(icmpError(target4, 3, 3, udpProbe(scanner4, target4, 161), 0)),
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 unreachable, quote cut after 20 bytes
		"icmp error short quote": testpkt.Build(icmpError(target4, 3, 3, udpProbe(scanner4, target4, 161), 20)),
		// IP6 2001:2::1 > 2001:2::1:7: ICMP6 echo request
		"icmp6 echo": testpkt.Build(testpkt.Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"),
			L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, Payload: make([]byte, 8)}),
		// IP 198.18.0.7 > 198.19.0.1: GREv0
		"gre": testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), Proto: 47, Payload: make([]byte, 24)}),
		// ARP, Request who-has 198.19.0.2 tell 198.19.0.1
		"arp": arpFrame(),
	}
	mutate := func(name, from string, f func(b []byte)) {
		b := append([]byte(nil), c[from]...)
		f(b)
		c[name] = b
	}
	be := binary.BigEndian
	mutate("udp4 length field 4", "udp4", func(b []byte) { be.PutUint16(b[38:], 4) })
	mutate("tcp4 data offset 4", "tcp4 syn-ack", func(b []byte) { b[46] = 4 << 4 })
	mutate("tcp4 data offset past the IP packet", "tcp4 syn-ack", func(b []byte) { b[46] = 15 << 4 })
	mutate("ipv4 total length shorter than its headers", "tcp4 syn-ack", func(b []byte) { be.PutUint16(b[16:], 30) })
	mutate("ipv4 total length 19", "udp4", func(b []byte) { be.PutUint16(b[16:], 19) })
	mutate("ipv4 total length past the frame", "udp4", func(b []byte) { be.PutUint16(b[16:], 1400) })
	mutate("ipv4 version 6", "udp4", func(b []byte) { b[14] = 0x65 })
	mutate("ipv6 payload length past the frame", "udp6", func(b []byte) { be.PutUint16(b[18:], 1400) })
	mutate("ipv6 payload length 4", "udp6", func(b []byte) { be.PutUint16(b[18:], 4) })
	mutate("ipv6 version 4", "udp6", func(b []byte) { b[14] = 0x45 })
	// 198.19.0.1.40000 > 198.18.0.250.9: UDP, with Ethernet padding past the IP packet
	c["udp4 padded"] = append(append([]byte(nil), c["udp4"]...), make([]byte, 10)...)
	return c
}

// TestCaptureCountsAsEveryProgramParses holds the capture program's inline
// classification to the full parser's counts (the responder's, which
// counts with parse_counted), frame by frame: the corpus and every
// truncation of each of its frames.
func TestCaptureCountsAsEveryProgramParses(t *testing.T) {
	capture := loadCapture(t, "", 262144, true)
	reference := loadResponder(t)
	for name, frame := range countCorpus() {
		t.Run(name, func(t *testing.T) {
			for n := len(frame); n >= 14; n-- {
				f := frame[:n]
				got, want := countOne(t, capture, f), countOne(t, reference, f)
				if got != want {
					t.Fatalf("%s: the capture program counted %+v, the full parser %+v", describeCut(n, len(frame)), got, want)
				}
				if got.Packets != 1 {
					t.Fatalf("%s: counted %d packets", describeCut(n, len(frame)), got.Packets)
				}
			}
		})
	}
}

// TestCaptureTCIngressCountsAsEveryProgramParses holds the TC ingress
// capture program (capture --mode auto on veth, or beside another XDP
// program) to the same counts, frame by frame: it classifies skbs with
// the same count_frame and parser.
func TestCaptureTCIngressCountsAsEveryProgramParses(t *testing.T) {
	bpftest.Require(t)
	raw, err := filter.Compile("", 262144)
	if err != nil {
		t.Fatal(err)
	}
	in, err := loader.LoadCaptureTC(loader.CaptureConfig{Filter: raw, Snaplen: 262144, CountOnly: true, RingBytes: 1 << 16}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	reference := loadResponder(t)
	for name, frame := range countCorpus() {
		t.Run(name, func(t *testing.T) {
			ran := 0
			for n := len(frame); n >= 14; n-- {
				f := frame[:n]
				// BPF_PROG_RUN builds no skb for an IPv4 or IPv6 frame
				// cut inside its IP header (EINVAL), though a link can
				// hand TC one: those cuts are the XDP test's only.
				if _, err := in.Program().Run(&ebpf.RunOptions{Data: f}); errors.Is(err, unix.EINVAL) {
					continue
				}
				ran++
				got, want := countOne(t, in, f), countOne(t, reference, f)
				if got != want {
					t.Fatalf("%s: the TC ingress program counted %+v, the full parser %+v", describeCut(n, len(frame)), got, want)
				}
			}
			if ran == 0 {
				t.Fatal("BPF_PROG_RUN took none of the frame's cuts")
			}
		})
	}
}

func describeCut(n, of int) string {
	if n == of {
		return "whole frame"
	}
	return fmt.Sprintf("first %d of %d bytes", n, of)
}

// shapeProbes are filters that read what the capture program's frame
// shapes claim to know (protocols, version and IHL, fragment bits, tags,
// lengths), at absolute and computed offsets, with and without scratch
// memory.
var shapeProbes = []string{
	"", "udp and dst port 9", "tcp port 443", "tcp", "udp", "icmp", "ip6", "vlan", "ether proto 0x0800",
	"ip[0] & 0xf != 5", "ip[0] >> 4 == 4", "ip[6:2] & 0x3fff != 0", "ip[6] & 0x20 != 0", "ip[6:2] & 0x1fff != 0",
	"ip6[0] >> 4 == 6", "ip6 and ip6[6] == 17", "ip6 and ip6[6] == 6 and ip6[53] & 4 != 0", "tcp[tcpflags] & tcp-syn != 0",
	"udp[4:2] < 8", "len < 60", "ip[2:2] < 28", "ip proto 47", "tcp[(tcp[12] >> 2)] == 0",
	"tcp and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0",
	"(tcp or udp) and not (port 22 or port 53) and net 198.18.0.0/15",
	"ip[ip[9]] == 0", "len == 60", "greater 70", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
}

// TestCaptureFiltersEveryShape holds the filter, specialized for each frame
// shape the capture program classifies, to libpcap's filter run by the
// classic VM, frame by frame over the classification's corpus and every
// truncation: a shape that claimed more than the C code checks would show
// here.
func TestCaptureFiltersEveryShape(t *testing.T) {
	corpus := countCorpus()
	for _, expr := range shapeProbes {
		t.Run(expr, func(t *testing.T) {
			vm := classicVM(t, expr)
			capture := loadCapture(t, expr, 262144, true)
			for name, frame := range corpus {
				for n := len(frame); n >= 14; n-- {
					f := frame[:n]
					keep, _ := vm.Run(f)
					if matched := runOne(t, capture, f).Matched; matched != min(uint64(keep), 1) {
						t.Fatalf("%s, %s: the program matched %d, libpcap's filter keeps %d bytes", name, describeCut(n, len(frame)), matched, keep)
					}
				}
			}
		})
	}
}

// classicVM is libpcap's compiled expr in the classic BPF VM, the
// reference the capture program's filter is held to.
func classicVM(t testing.TB, expr string) *cbpf.VM {
	t.Helper()
	raw, err := filter.Compile(expr, 262144)
	if err != nil {
		t.Fatal(err)
	}
	return bpftest.ClassicVM(t, raw)
}
