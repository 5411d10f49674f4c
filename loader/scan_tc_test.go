package loader_test

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/scantest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

// TC's verdicts (bpf/include/skb.h, scan_tc.c).
const (
	tcNext     = ^uint32(0) // TC_ACT_UNSPEC: the next program decides
	tcShot     = 2          // TC_ACT_SHOT
	tcRedirect = 7          // TC_ACT_REDIRECT
)

// loadScanTC is a scan program as a scan beside another XDP program loads
// it: the XDP program (its maps, and --tx xdp's transmitter) and the TC
// variant on the same maps.
func loadScanTC(t testing.TB, s *loader.Scan) *loader.ScanTC {
	t.Helper()
	tc, err := s.LoadTC()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return tc
}

// scanMix is frames of every kind the scan program decides on: replies of
// each probe kind and family, tagged and not, with options and extension
// headers, fragments, wrong cookies, traffic not ours, each valid reply cut
// at every length, and random corruptions of them.
func scanMix() [][]byte {
	c4 := cookie(scanner4, target4, 40001, 443)
	c6 := cookie(scanner6, target6, 40001, 443)
	h53 := udpHash(scanner4, target4, 53)
	hEcho := testKey.Hash4(scanner4.As4(), target4.As4(), 1, 0, 0)
	cEcho := uint32(hEcho)
	tagged := func(f testpkt.Frame, v ...uint16) testpkt.Frame { f.VLANs = v; return f }
	frag := func(f testpkt.Frame, off uint16) testpkt.Frame {
		f.MoreFragments, f.FragOffset = off == 0, off
		return f
	}
	opts := reply("SA", c4+1)
	opts.IPOptions = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	ext := reply6("RA", c6+1)
	ext.IPv6Ext = []testpkt.Ext{testpkt.HopByHop(), testpkt.DestOpts()}
	valid := []testpkt.Frame{
		reply("SA", c4+1), reply("RA", c4+1), reply("RA", c4), reply6("SA", c6+1), ext, opts,
		tagged(reply("SA", c4+1), 10), tagged(reply("SA", c4+1), 100, 10), frag(reply("SA", c4+1), 0),
		icmpError(target4, 3, 3, udpProbe(scanner4, target4, 53), 0),
		icmpError(router4, 3, 1, udpProbe(scanner4, target4, 9999), 0),
		quotingError(target6, 1, 4, udpProbe(scanner6, target6, 53), 0),
		udpReply(53, udpSport(uint32(h53)), dnsAnswer(h53)),
		{Src: target4, Dst: scanner4, TTL: 64, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: uint16(cEcho >> 16), Seq: uint16(cEcho)}},
	}
	others := []testpkt.Frame{
		reply("SA", c4), reply("A", c4+1), reply6("SA", c4+1), frag(reply("SA", c4+1), 1),
		{Src: target4, Dst: scanner4, L4: testpkt.TCP(443, 22, 777, 1, "SA")},
		{Src: target4, Dst: netip.MustParseAddr("198.19.0.9"), L4: testpkt.TCP(443, 40001, 1, c4+1, "SA")},
		udpReply(53, udpSport(uint32(h53)), dnsAnswer(h53^1<<48)),
	}
	var out [][]byte
	rng := rand.New(rand.NewPCG(19, 3))
	for _, f := range valid {
		full := testpkt.Build(f)
		for n := 14; n < len(full); n++ {
			out = append(out, full[:n])
		}
		for range 40 {
			b := append([]byte(nil), full...)
			for range 1 + rng.IntN(3) {
				b[14+rng.IntN(len(b)-14)] ^= byte(1 + rng.IntN(255))
			}
			out = append(out, b)
		}
		out = append(out, full)
	}
	for _, f := range others {
		out = append(out, testpkt.Build(f))
	}
	return append(out, arpFrame())
}

// TestScanTCMatchesXDP runs the mix through the XDP program and through
// the TC variant (each on maps of its own): the same frames are consumed
// (XDP_DROP, TC_ACT_SHOT) and passed on (XDP_PASS, TC_ACT_UNSPEC), the
// same events reach the ring, in the same order, and the counters agree.
func TestScanTCMatchesXDP(t *testing.T) {
	x := scantest.LoadUDP(t)
	s := scantest.LoadUDP(t)
	tc := loadScanTC(t, s)
	consumed := 0
	for i, frame := range scanMix() {
		tv, err := tc.Program().Run(&ebpf.RunOptions{Data: frame})
		if errors.Is(err, unix.EINVAL) && len(frame) < 14+40 {
			// BPF_PROG_RUN builds no skb for an IP frame shorter than
			// its IP header (bpf_prog_test_run_skb); XDP's run would
			// still count it.
			continue
		}
		if err != nil {
			t.Fatalf("frame %d: TC BPF_PROG_RUN: %v", i, err)
		}
		xv := run(t, x, frame)
		want := map[uint32]uint32{xdpDrop: tcShot, xdpPass: tcNext}[xv]
		if tv != want {
			t.Fatalf("frame %d (% x): XDP verdict %d, TC %d, want %d", i, frame, xv, int32(tv), int32(want))
		}
		if xv == xdpDrop {
			consumed++
		}
	}
	xe, te := drain(t, x), scantest.Drain(t, s)
	if len(xe) != len(te) || len(xe) == 0 {
		t.Fatalf("XDP reported %d events, TC %d", len(xe), len(te))
	}
	for i := range xe {
		a, b := xe[i], te[i]
		a.TsNs, b.TsNs = 0, 0
		if a != b {
			t.Fatalf("event %d: XDP %+v, TC %+v", i, a, b)
		}
	}
	xc, tcc := counters(t, x), counters(t, s)
	if xc != tcc {
		t.Fatalf("counters differ:\nXDP %+v\nTC  %+v", xc, tcc)
	}
	checkInvariant(t, tcc)
	if tcc.Matched != uint64(consumed) || consumed < 14 {
		t.Fatalf("matched %d, consumed %d: want equal, at least the 14 valid replies", tcc.Matched, consumed)
	}
}

// TestScanTCChainsByCookieKey: two scans with their own keys chained on
// one hook each take their own replies and pass the other's on, counting
// it as an invalid cookie; neither reports the other's.
func TestScanTCChainsByCookieKey(t *testing.T) {
	keyB := testKey
	keyB[0] ^= 0x5a5a
	sa := scantest.Load(t, testKey)
	a := loadScanTC(t, sa)
	sb := scantest.Load(t, keyB)
	b := loadScanTC(t, sb)
	mine := testpkt.Build(reply("SA", cookie(scanner4, target4, 40001, 443)+1))
	theirs := testpkt.Build(reply("SA", keyB.Cookie(scanner4, target4, 6, 40001, 443)+1))
	for _, tc := range []struct {
		name  string
		frame []byte
		a, b  uint32 // the verdicts of a (first in the chain) and, if it passes, b
	}{
		{"a's reply", mine, tcShot, 0},
		{"b's reply", theirs, tcNext, tcShot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Program().Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil || got != tc.a {
				t.Fatalf("first program: verdict %d (%v), want %d", int32(got), err, int32(tc.a))
			}
			if got != tcNext {
				return
			}
			if got, err = b.Program().Run(&ebpf.RunOptions{Data: tc.frame}); err != nil || got != tc.b {
				t.Fatalf("second program: verdict %d (%v), want %d", int32(got), err, int32(tc.b))
			}
		})
	}
	if ev := scantest.Drain(t, sa); len(ev) != 1 || ev[0].LocalPort != 40001 {
		t.Errorf("first scan's events %+v, want its own reply only", ev)
	}
	if ev := scantest.Drain(t, sb); len(ev) != 1 {
		t.Errorf("second scan's events %+v, want its own reply only", ev)
	}
}

// TestScanTCResetRedirectsRST: with --reset, a valid SYN-ACK at TC ingress
// becomes our RST, redirected to the interface's egress (TC_ACT_REDIRECT),
// as XDP sends it back with XDP_TX.
func TestScanTCResetRedirectsRST(t *testing.T) {
	mss := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}
	for _, tc := range []struct {
		name       string
		us, target netip.Addr
		reply      func(flags string, ack uint32) testpkt.Frame
		outLen     int
	}{
		{"ipv4", scanner4, target4, reply, 54},
		{"ipv6", scanner6, target6, reply6, 74},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadResetScan(t)
			p := loadScanTC(t, s)
			c := cookie(tc.us, tc.target, 40001, 443)
			synack := tc.reply("SA", c+1)
			synack.L4.(*layers.TCP).Options = mss
			in := testpkt.Build(synack)
			opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+64)}
			verdict, err := p.Program().Run(opts)
			if err != nil {
				t.Fatal(err)
			}
			if verdict != tcRedirect {
				t.Fatalf("verdict %d, want TC_ACT_REDIRECT", int32(verdict))
			}
			checkOurRST(t, opts.DataOut, tc.outLen, tc.us, tc.target, c+1)
			if n := len(drain(t, s)); n != 1 {
				t.Fatalf("%d events, want 1", n)
			}
			if got, _ := p.Program().Run(&ebpf.RunOptions{Data: testpkt.Build(tc.reply("RA", c+1))}); got != tcShot {
				t.Fatalf("RST reply: verdict %d, want TC_ACT_SHOT", int32(got))
			}
		})
	}
}
