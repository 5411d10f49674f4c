package loader_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/scantest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

// The shared fixtures live in internal/scantest, which probe/'s tests use too.
const (
	xdpDrop = scantest.XDPDrop
	xdpPass = scantest.XDPPass
)

var (
	scanner4 = scantest.Scanner4
	target4  = scantest.Target4
	scanner6 = scantest.Scanner6
	target6  = scantest.Target6
	testKey  = scantest.Key
)

func loadScan(t testing.TB, key probe.CookieKey) *loader.Scan {
	t.Helper()
	return scantest.Load(t, key)
}

func run(t testing.TB, s *loader.Scan, frame []byte) uint32 {
	t.Helper()
	return scantest.Run(t, s, frame)
}

// drain returns every event waiting in the ring.
func drain(t testing.TB, s *loader.Scan) []bpf.ScanScanEvent {
	t.Helper()
	return scantest.Drain(t, s)
}

func cookie(src, dst netip.Addr, sport, dport uint16) uint32 {
	return testKey.Cookie(src, dst, 6, sport, dport)
}

// reply is the target's answer to our probe scanner:40001 -> target:443.
func reply(flags string, ack uint32) testpkt.Frame {
	return testpkt.Frame{Src: target4, Dst: scanner4, TTL: 61, IPID: 0x1234,
		L4: testpkt.TCP(443, 40001, 777, ack, flags)}
}

func reply6(flags string, ack uint32) testpkt.Frame {
	return testpkt.Frame{Src: target6, Dst: scanner6, TTL: 60,
		L4: testpkt.TCP(443, 40001, 777, ack, flags)}
}

func TestScanProgramVerdicts(t *testing.T) {
	c4 := cookie(scanner4, target4, 40001, 443)
	c6 := cookie(scanner6, target6, 40001, 443)
	withVLANs := func(f testpkt.Frame, v ...uint16) testpkt.Frame { f.VLANs = v; return f }
	withOpts := func(f testpkt.Frame) testpkt.Frame {
		f.IPOptions = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		return f
	}

	tests := []struct {
		name    string
		frame   testpkt.Frame
		verdict uint32
		kind    uint8 // 0: no event expected
		check   func(t *testing.T, c loader.Counters)
	}{
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.], seq 777, ack c4+1, win 64240
		{name: "valid SYN-ACK", frame: reply("SA", c4+1), verdict: xdpDrop, kind: 1},
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [R.], seq 777, ack c4+1
		{name: "valid RST counting the SYN", frame: reply("RA", c4+1), verdict: xdpDrop, kind: 2},
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [R.], seq 777, ack c4
		{name: "valid RST not counting the SYN", frame: reply("RA", c4), verdict: xdpDrop, kind: 2},
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.], seq 777, ack c4 (off by one)
		{name: "SYN-ACK with wrong cookie", frame: reply("SA", c4), verdict: xdpPass,
			check: func(t *testing.T, c loader.Counters) { expect(t, "invalid_cookie", c.BadCookie, 1) }},
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [.], ack c4+1
		{name: "plain ACK is not a reply", frame: reply("A", c4+1), verdict: xdpPass},
		// 198.18.0.7.443 > 198.19.0.1.39999: Flags [S.]
		{name: "port outside our range", frame: testpkt.Frame{Src: target4, Dst: scanner4,
			L4: testpkt.TCP(443, 39999, 1, cookie(scanner4, target4, 39999, 443)+1, "SA")}, verdict: xdpPass,
			check: func(t *testing.T, c loader.Counters) { expect(t, "invalid_cookie", c.BadCookie, 0) }},
		// 198.18.0.7.443 > 198.19.0.9.40001: Flags [S.]
		{name: "not addressed to us", frame: testpkt.Frame{Src: target4, Dst: netip.MustParseAddr("198.19.0.9"),
			L4: testpkt.TCP(443, 40001, 1, c4+1, "SA")}, verdict: xdpPass},
		// vlan 10, 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]
		{name: "802.1Q", frame: withVLANs(reply("SA", c4+1), 10), verdict: xdpDrop, kind: 1,
			check: func(t *testing.T, c loader.Counters) { expect(t, "vlan", c.VLAN, 1) }},
		// vlan 100 (802.1ad), vlan 10, 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]
		{name: "QinQ", frame: withVLANs(reply("SA", c4+1), 100, 10), verdict: xdpDrop, kind: 1},
		// IP (options [nop,nop,nop,eol]) 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]
		{name: "IPv4 options", frame: withOpts(reply("SA", c4+1)), verdict: xdpDrop, kind: 1},
		// IP (flags [+], offset 0) 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]: first fragment
		{name: "first fragment carries L4", frame: func() testpkt.Frame {
			f := reply("SA", c4+1)
			f.MoreFragments = true
			return f
		}(), verdict: xdpDrop, kind: 1, check: func(t *testing.T, c loader.Counters) { expect(t, "fragments", c.Fragments, 1) }},
		// IP (offset 8) 198.18.0.7 > 198.19.0.1: tcp (non-first fragment)
		{name: "non-first fragment", frame: func() testpkt.Frame {
			f := reply("SA", c4+1)
			f.FragOffset = 1
			return f
		}(), verdict: xdpPass, check: func(t *testing.T, c loader.Counters) {
			expect(t, "fragments", c.Fragments, 1)
			expect(t, "tcp", c.TCP, 0)
			expect(t, "other_l4", c.OtherL4, 1)
		}},
		// IP6 2001:2::1:7.443 > 2001:2::1.40001: Flags [S.]
		{name: "IPv6 SYN-ACK", frame: reply6("SA", c6+1), verdict: xdpDrop, kind: 1},
		// IP6 (hbh, dstopt) 2001:2::1:7.443 > 2001:2::1.40001: Flags [R.]
		{name: "IPv6 extension headers", frame: func() testpkt.Frame {
			f := reply6("RA", c6+1)
			f.IPv6Ext = []testpkt.Ext{testpkt.HopByHop(), testpkt.DestOpts()}
			return f
		}(), verdict: xdpDrop, kind: 2},
		// IP6 (frag 0x1234:8|32) 2001:2::1:7 > 2001:2::1: non-first fragment
		{name: "IPv6 non-first fragment", frame: func() testpkt.Frame {
			f := reply6("SA", c6+1)
			f.IPv6Ext = []testpkt.Ext{testpkt.Fragment6(1, false)}
			return f
		}(), verdict: xdpPass, check: func(t *testing.T, c loader.Counters) { expect(t, "fragments", c.Fragments, 1) }},
		// IP6 2001:2::1:7.443 > 2001:2::1.40001: Flags [S.] with the IPv4 tuple's cookie
		{name: "IPv6 wrong cookie", frame: reply6("SA", c4+1), verdict: xdpPass,
			check: func(t *testing.T, c loader.Counters) { expect(t, "invalid_cookie", c.BadCookie, 1) }},
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 tcp port 443 unreachable, quote cut to 4 bytes of TCP
		{name: "ICMP error with truncated quote", frame: testpkt.Frame{Src: target4, Dst: scanner4,
			L4:      &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)},
			Payload: testpkt.Build(testpkt.Frame{Src: scanner4, Dst: target4, L4: testpkt.TCP(40001, 443, c4, 0, "S")})[14 : 14+24]},
			verdict: xdpPass, check: func(t *testing.T, c loader.Counters) {
				expect(t, "icmp", c.ICMP, 1)
				expect(t, "bad_quotes", c.BadQuotes, 1)
			}},
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 tcp port 443 unreachable, full quote of a SYN
		// whose sequence is not our cookie (scan_udp_test.go has the matching ones)
		{name: "ICMP error with full quote of a SYN not ours", frame: testpkt.Frame{Src: target4, Dst: scanner4,
			L4:      &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)},
			Payload: testpkt.Build(testpkt.Frame{Src: scanner4, Dst: target4, L4: testpkt.TCP(40001, 443, c4+7, 0, "S")})[14 : 14+28]},
			verdict: xdpPass, check: func(t *testing.T, c loader.Counters) {
				expect(t, "bad_quotes", c.BadQuotes, 0)
				expect(t, "invalid_cookie", c.BadCookie, 1)
			}},
		// ARP, Request who-has 198.19.0.1 tell 198.19.0.2
		{name: "ARP is not IP", frame: testpkt.Frame{}, verdict: xdpPass,
			check: func(t *testing.T, c loader.Counters) { expect(t, "non_ip", c.NonIP, 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := loadScan(t, testKey)
			var frame []byte
			if !tc.frame.Src.IsValid() {
				frame = arpFrame()
			} else {
				frame = testpkt.Build(tc.frame)
			}
			if got := run(t, s, frame); got != tc.verdict {
				t.Fatalf("verdict %d, want %d", got, tc.verdict)
			}
			c := counters(t, s)
			checkInvariant(t, c)
			events := drain(t, s)
			if tc.kind == 0 {
				if len(events) != 0 {
					t.Fatalf("got %d events, want none", len(events))
				}
				expect(t, "matched", c.Matched, 0)
			} else {
				if len(events) != 1 {
					t.Fatalf("got %d events, want 1", len(events))
				}
				checkEvent(t, events[0], tc.frame, tc.kind)
				expect(t, "matched", c.Matched, 1)
				expect(t, "dropped", c.Dropped, 1)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func checkEvent(t *testing.T, e bpf.ScanScanEvent, f testpkt.Frame, kind uint8) {
	t.Helper()
	tcp := f.L4.(*layers.TCP)
	var addr netip.Addr
	if e.Family == 4 {
		addr = netip.AddrFrom4([4]byte(e.Addr[:4]))
	} else {
		addr = netip.AddrFrom16(e.Addr)
	}
	if addr != f.Src || e.Port != uint16(tcp.SrcPort) || e.LocalPort != uint16(tcp.DstPort) {
		t.Errorf("event tuple %s:%d (local %d), want %s:%d (local %d)", addr, e.Port, e.LocalPort, f.Src, tcp.SrcPort, tcp.DstPort)
	}
	if e.Kind != kind || e.Proto != 6 || e.Ttl != f.TTL || e.IpId != f.IPID || e.Window != tcp.Window {
		t.Errorf("event %+v: want kind %d ttl %d id %d window %d", e, kind, f.TTL, f.IPID, tcp.Window)
	}
	if e.TsNs == 0 {
		t.Error("event has no timestamp")
	}
}

func TestScanProgramDeduplicates(t *testing.T) {
	s := loadScan(t, testKey)
	frame := testpkt.Build(reply("SA", cookie(scanner4, target4, 40001, 443)+1))
	for i := 0; i < 3; i++ {
		if got := run(t, s, frame); got != xdpDrop {
			t.Fatalf("copy %d: verdict %d, want XDP_DROP", i, got)
		}
	}
	c := counters(t, s)
	expect(t, "matched", c.Matched, 3)
	expect(t, "duplicates", c.Duplicates, 2)
	if n := len(drain(t, s)); n != 1 {
		t.Fatalf("got %d events for one (address, port), want 1", n)
	}
}

// TestScanCookieMatchesGo sends replies for random tuples under several keys:
// the kernel must accept exactly the ones whose ack carries probe's cookie.
func TestScanCookieMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for k := 0; k < 3; k++ {
		key := probe.CookieKey{rng.Uint64(), rng.Uint64()}
		s := loadScan(t, key)
		for i := 0; i < 300; i++ {
			tgt := netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(256)), byte(rng.IntN(256))})
			sport := uint16(40000 + rng.IntN(256))
			dport := uint16(1 + rng.IntN(65535))
			c := key.Cookie4(scanner4.As4(), tgt.As4(), 6, sport, dport)
			good := testpkt.Build(testpkt.Frame{Src: tgt, Dst: scanner4, L4: testpkt.TCP(dport, sport, 1, c+1, "SA")})
			bad := testpkt.Build(testpkt.Frame{Src: tgt, Dst: scanner4, L4: testpkt.TCP(dport, sport, 1, c^0x80000000+1, "SA")})
			if got := run(t, s, bad); got != xdpPass {
				t.Fatalf("key %d tuple %s:%d<-%d: wrong cookie got verdict %d", k, tgt, dport, sport, got)
			}
			if got := run(t, s, good); got != xdpDrop {
				t.Fatalf("key %d tuple %s:%d<-%d: Go cookie %#x rejected by the kernel", k, tgt, dport, sport, c)
			}
		}
		drain(t, s)
	}
}

// TestScanProgramTruncatedFrames cuts valid replies at every length: the
// verifier-checked program must pass each one and never emit an event.
func TestScanProgramTruncatedFrames(t *testing.T) {
	c4 := cookie(scanner4, target4, 40001, 443)
	c6 := cookie(scanner6, target6, 40001, 443)
	qinq := reply("SA", c4+1)
	qinq.VLANs = []uint16{100, 10}
	ext := reply6("SA", c6+1)
	ext.IPv6Ext = []testpkt.Ext{testpkt.HopByHop(), testpkt.DestOpts()}
	for name, f := range map[string]testpkt.Frame{"ipv4": reply("SA", c4+1), "qinq": qinq, "ipv6-ext": ext} {
		t.Run(name, func(t *testing.T) {
			s := loadScan(t, testKey)
			full := testpkt.Build(f)
			for n := 14; n < ipEnd(full); n++ {
				if got := run(t, s, full[:n]); got != xdpPass {
					t.Fatalf("cut at %d of %d bytes: verdict %d, want XDP_PASS", n, len(full), got)
				}
			}
			c := counters(t, s)
			checkInvariant(t, c)
			expect(t, "packets", c.Packets, uint64(ipEnd(full)-14))
			expect(t, "matched", c.Matched, 0)
			if c.ParseErrors == 0 {
				t.Error("no parse error counted for truncated frames")
			}
			if n := len(drain(t, s)); n != 0 {
				t.Fatalf("%d events from truncated frames", n)
			}
		})
	}
}

func TestScanProgramBadLengths(t *testing.T) {
	good := testpkt.Build(reply("SA", cookie(scanner4, target4, 40001, 443)+1))
	tests := []struct {
		name  string
		patch func(b []byte)
	}{
		// IP header says 2000 bytes, the frame has 54
		{"IPv4 total length beyond frame", func(b []byte) { b[16], b[17] = 0x07, 0xd0 }},
		// IP header says 12 bytes, less than its own header
		{"IPv4 total length below header", func(b []byte) { b[16], b[17] = 0, 12 }},
		// IHL 4 (16 bytes) is below the minimum of 5
		{"IPv4 IHL below 5", func(b []byte) { b[14] = 0x44 }},
		// IHL 15 (60 bytes) runs past the frame
		{"IPv4 IHL past frame", func(b []byte) { b[14] = 0x4f }},
		// TCP data offset 2 (8 bytes) is below 5
		{"TCP data offset below 5", func(b []byte) { b[46] = 0x20 }},
		// version 6 in an IPv4 ethertype
		{"IP version mismatch", func(b []byte) { b[14] = 0x65 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := loadScan(t, testKey)
			b := append([]byte(nil), good...)
			tc.patch(b)
			if got := run(t, s, b); got != xdpPass {
				t.Fatalf("verdict %d, want XDP_PASS", got)
			}
			c := counters(t, s)
			checkInvariant(t, c)
			expect(t, "parse_errors", c.ParseErrors, 1)
			expect(t, "matched", c.Matched, 0)
		})
	}
}

func TestRingLossIsCounted(t *testing.T) {
	bpftest.Require(t)
	s, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: scanner4, SourcePortLo: 40000, SourcePortHi: 40255,
		CookieKey: [2]uint64(testKey), RingBytes: 4096, DedupEntries: 1 << 12})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A 4 KiB ring holds 4096/(8+56) = 64 records; nobody reads it.
	const sent = 200
	for i := 0; i < sent; i++ {
		tgt := netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
		c := testKey.Cookie4(scanner4.As4(), tgt.As4(), 6, 40000, 80)
		if got := run(t, s, testpkt.Build(testpkt.Frame{Src: tgt, Dst: scanner4, L4: testpkt.TCP(80, 40000, 1, c+1, "SA")})); got != xdpDrop {
			t.Fatalf("reply %d: verdict %d", i, got)
		}
	}
	c := counters(t, s)
	events := drain(t, s)
	if c.RingLost == 0 {
		t.Fatal("ring overflowed but no loss was counted")
	}
	if uint64(len(events))+c.RingLost != sent {
		t.Fatalf("delivered %d + lost %d != %d sent", len(events), c.RingLost, sent)
	}
	// A lost reply is forgotten by the dedup map, so a retransmission is
	// reported once the ring has room again.
	tgt := netip.AddrFrom4([4]byte{198, 18, 1, sent - 1})
	c2 := testKey.Cookie4(scanner4.As4(), tgt.As4(), 6, 40000, 80)
	run(t, s, testpkt.Build(testpkt.Frame{Src: tgt, Dst: scanner4, L4: testpkt.TCP(80, 40000, 1, c2+1, "SA")}))
	if n := len(drain(t, s)); n != 1 {
		t.Fatalf("retransmission after loss: %d events, want 1", n)
	}
}

func counters(t testing.TB, s *loader.Scan) loader.Counters {
	t.Helper()
	c, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkInvariant(t testing.TB, c loader.Counters) {
	t.Helper()
	if c.Packets != c.L2Errors+c.NonIP+c.IPv4+c.IPv6 {
		t.Errorf("packets %d != l2_errors %d + non_ip %d + ipv4 %d + ipv6 %d", c.Packets, c.L2Errors, c.NonIP, c.IPv4, c.IPv6)
	}
	if c.TCP != c.TCPSyn+c.TCPSynAck+c.TCPRst+c.TCPFin+c.TCPOther {
		t.Errorf("tcp %d != syn %d + syn-ack %d + rst %d + fin %d + other %d", c.TCP, c.TCPSyn, c.TCPSynAck, c.TCPRst, c.TCPFin, c.TCPOther)
	}
	if c.Matched > c.TCP+c.UDP+c.ICMP+c.ICMPv6 || c.Duplicates+c.RingLost > c.Matched || c.Dropped != c.Matched {
		t.Errorf("inconsistent counters: %+v", c)
	}
}

func expect(t testing.TB, name string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("counter %s = %d, want %d", name, got, want)
	}
}

// arpFrame is "ARP, Request who-has 198.19.0.1 tell 198.19.0.2".
func arpFrame() []byte {
	b := make([]byte, 42)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06})
	copy(b[14:], []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 19, 0, 2, 0, 0, 0, 0, 0, 0, 198, 19, 0, 1})
	return b
}

// ipEnd is where the IP packet in frame ends: gopacket pads short frames to
// Ethernet's 60 bytes, and cutting only padding leaves a valid packet.
func ipEnd(frame []byte) int {
	l3 := 14
	for frame[l3-2] == 0x81 || frame[l3-2] == 0x88 {
		l3 += 4
	}
	if frame[l3]>>4 == 4 {
		return l3 + int(binary.BigEndian.Uint16(frame[l3+2:]))
	}
	return l3 + 40 + int(binary.BigEndian.Uint16(frame[l3+4:]))
}

// TestScanResetAnswersSYNACKWithRST: with ResetOpen, a valid SYN-ACK of
// either family comes back out as our RST (seq = its ack), still reported
// once; a RST reply is only dropped; a SYN-ACK behind IPv6 extension headers
// is dropped, not rewritten.
func TestScanResetAnswersSYNACKWithRST(t *testing.T) {
	bpftest.Require(t)
	mss := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}
	tests := []struct {
		name       string
		us, target netip.Addr
		reply      func(flags string, ack uint32) testpkt.Frame
		outLen     int
	}{
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.], seq 777, ack c+1, options [mss 1460]
		{"ipv4", scanner4, target4, reply, 54},
		// IP6 2001:2::1:7.443 > 2001:2::1.40001: Flags [S.], seq 777, ack c+1, options [mss 1460]
		{"ipv6", scanner6, target6, reply6, 74},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := loadResetScan(t)
			c := cookie(tc.us, tc.target, 40001, 443)
			synack := tc.reply("SA", c+1)
			synack.L4.(*layers.TCP).Options = mss
			in := testpkt.Build(synack)
			opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+64)}
			verdict, err := s.Program().Run(opts)
			if err != nil {
				t.Fatal(err)
			}
			if verdict != 3 {
				t.Fatalf("verdict %d, want XDP_TX", verdict)
			}
			checkOurRST(t, opts.DataOut, tc.outLen, tc.us, tc.target, c+1)
			if n := len(drain(t, s)); n != 1 {
				t.Fatalf("%d events, want 1", n)
			}
			if got := run(t, s, testpkt.Build(tc.reply("RA", c+1))); got != xdpDrop {
				t.Fatalf("RST reply: verdict %d, want XDP_DROP", got)
			}
		})
	}
	t.Run("ipv6 extension headers", func(t *testing.T) {
		s := loadResetScan(t)
		// IP6 (hbh) 2001:2::1:7.443 > 2001:2::1.40001: Flags [S.], ack c+1
		f := reply6("SA", cookie(scanner6, target6, 40001, 443)+1)
		f.IPv6Ext = []testpkt.Ext{testpkt.HopByHop()}
		if got := run(t, s, testpkt.Build(f)); got != xdpDrop {
			t.Fatalf("verdict %d, want XDP_DROP", got)
		}
	})
}

func loadResetScan(t *testing.T) *loader.Scan {
	s, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: scanner4, SourceIPv6: scanner6, SourcePortLo: 40000, SourcePortHi: 40255,
		CookieKey: [2]uint64(testKey), RingBytes: 1 << 16, DedupEntries: 1 << 12, ResetOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkOurRST fails unless out is the scan's RST for the SYN-ACK from
// target to us (us.40001 > target.443: Flags [R], seq seq), outLen bytes,
// with right checksums.
func checkOurRST(t *testing.T, out []byte, outLen int, us, target netip.Addr, seq uint32) {
	t.Helper()
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if pkt.NetworkLayer() == nil || tcp == nil || len(out) != outLen {
		t.Fatalf("reply is not a %d-byte TCP frame: % x", outLen, out)
	}
	flow := pkt.NetworkLayer().NetworkFlow()
	src, _ := netip.AddrFromSlice(flow.Src().Raw())
	dst, _ := netip.AddrFromSlice(flow.Dst().Raw())
	if src != us || dst != target || tcp.SrcPort != 40001 || tcp.DstPort != 443 || !tcp.RST || tcp.ACK || tcp.SYN || tcp.Seq != seq {
		t.Fatalf("reply %s > %s / %+v is not our RST", src, dst, tcp)
	}
	if ok, err := testpkt.ChecksumsMatch(out); !ok || err != nil {
		t.Fatalf("checksums wrong in % x (%v)", out, err)
	}
}
