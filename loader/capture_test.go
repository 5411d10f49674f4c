package loader_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/ringtest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

type captured struct {
	hdr  bpf.CaptureCaptureHdr
	data []byte
}

func loadCapture(t testing.TB, expr string, snaplen uint32, countOnly bool) *loader.Capture {
	t.Helper()
	bpftest.Require(t)
	raw, err := filter.Compile(expr, 262144)
	if err != nil {
		t.Fatal(err)
	}
	// The savefile code sees every frame as it is: FrameView.
	c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: snaplen, CountOnly: countOnly, RingBytes: 1 << 16, FrameView: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCaptureSeesTaggedFramesAsTcpdump: with the code libpcap compiles
// for a live handle, the capture program shows the filter a tagged frame
// without its outer tag, as the kernel shows a socket filter, and keeps
// the frame with the tag in place (what tcpdump writes): `tcp` matches TCP
// inside a VLAN, `vlan 10` reads the tag, -s 64 keeps 64 bytes of the
// tagged frame, and a tagged frame too short for the kernel to untag (it
// drops it) matches nothing.
func TestCaptureSeesTaggedFramesAsTcpdump(t *testing.T) {
	bpftest.Require(t)
	a := netip.MustParseAddr
	tagged := testpkt.Build(testpkt.Frame{VLANs: []uint16{10}, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S"), Payload: make([]byte, 100)})
	qinq := testpkt.Build(testpkt.Frame{VLANs: []uint16{20, 10}, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")})
	plain := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")})
	short := append([]byte(nil), tagged[:19]...)
	for _, tc := range []struct {
		expr    string
		snaplen uint32
		want    []int // captured lengths, in the order of the frames
	}{
		{"tcp", 262144, []int{len(tagged), len(plain)}},
		{"tcp port 443", 64, []int{64, len(plain)}},
		{"vlan 10", 262144, []int{len(tagged)}},
		{"vlan 20 and vlan 10 and tcp", 262144, []int{len(qinq)}},
		// After the outer tag, QinQ's inner tag is where `tcp` looks for
		// the EtherType: libpcap's `vlan` shifts nothing when the tag was
		// in metadata.
		{"vlan and tcp", 262144, []int{len(tagged)}},
		{"not vlan", 262144, []int{len(plain)}},
		{"", 262144, []int{len(tagged), len(qinq), len(plain)}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			raw, err := filter.CompileLive(context.Background(), "lo", tc.expr, 262144)
			if err != nil {
				t.Fatal(err)
			}
			c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: tc.snaplen, RingBytes: 1 << 16})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, f := range [][]byte{tagged, qinq, plain, short} {
				if _, err := c.Program().Run(&ebpf.RunOptions{Data: f}); err != nil {
					t.Fatal(err)
				}
			}
			got := drainCaptures(t, c)
			var lens []int
			for _, g := range got {
				lens = append(lens, int(g.hdr.CapLen))
			}
			if fmt.Sprint(lens) != fmt.Sprint(tc.want) {
				t.Fatalf("captured lengths %v, want %v", lens, tc.want)
			}
		})
	}
}

func drainCaptures(t testing.TB, c *loader.Capture) []captured {
	t.Helper()
	var out []captured
	ringtest.DrainRecords(t, c.Events(), func(h *bpf.CaptureCaptureHdr, payload []byte) {
		out = append(out, captured{*h, append([]byte(nil), payload[:h.CapLen]...)})
	})
	return out
}

func TestCaptureFiltersInTheKernel(t *testing.T) {
	a := netip.MustParseAddr
	// 198.19.0.1.40001 > 198.18.0.7.443: Flags [S], 100 bytes of payload
	https := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S"), Payload: make([]byte, 100)})
	// 198.19.0.1.40001 > 198.18.0.7.80: Flags [S]
	http := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 80, 1, 0, "S")})
	// vlan 10, 198.19.0.1.40001 > 198.18.0.7.443: Flags [S]
	vlan := testpkt.Build(testpkt.Frame{VLANs: []uint16{10}, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")})
	// IP6 2001:2::1.5353 > 2001:2::7.53: UDP
	dns6 := testpkt.Build(testpkt.Frame{Src: a("2001:2::1"), Dst: a("2001:2::7"), L4: &layers.UDP{SrcPort: 5353, DstPort: 53}, Payload: make([]byte, 20)})

	tests := []struct {
		name      string
		expr      string
		snaplen   uint32
		countOnly bool
		frames    [][]byte
		want      []int // captured lengths, in order
		matched   uint64
	}{
		{"filter keeps only matches", "tcp port 443", 262144, false, [][]byte{https, http, dns6}, []int{len(https)}, 1},
		{"empty filter keeps all", "", 262144, false, [][]byte{https, http}, []int{len(https), len(http)}, 2},
		{"snaplen applied in the kernel", "tcp", 64, false, [][]byte{https, http}, []int{64, len(http)}, 2},
		{"count-only copies nothing", "tcp", 262144, true, [][]byte{https, http, dns6}, nil, 2},
		{"vlan and tcp", "vlan and tcp", 262144, false, [][]byte{vlan, https}, []int{len(vlan)}, 1},
		{"ip6 and udp port 53", "ip6 and udp port 53", 262144, false, [][]byte{dns6, https}, []int{len(dns6)}, 1},
		{"truncated frame fails a load: no match", "tcp port 443", 262144, false, [][]byte{https[:30]}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCapture(t, tc.expr, tc.snaplen, tc.countOnly)
			for _, f := range tc.frames {
				verdict, err := c.Program().Run(&ebpf.RunOptions{Data: f})
				if err != nil {
					t.Fatal(err)
				}
				if verdict != xdpPass {
					t.Fatalf("verdict %d: capture must pass every packet", verdict)
				}
			}
			got := drainCaptures(t, c)
			if len(got) != len(tc.want) {
				t.Fatalf("captured %d packets, want %d", len(got), len(tc.want))
			}
			for i, g := range got {
				if int(g.hdr.CapLen) != tc.want[i] || string(g.data) != string(tc.frames[indexOf(tc.frames, g.hdr.OrigLen)][:g.hdr.CapLen]) {
					t.Errorf("capture %d: cap_len %d (want %d), bytes differ from the frame", i, g.hdr.CapLen, tc.want[i])
				}
				if g.hdr.TsNs == 0 {
					t.Error("no timestamp")
				}
			}
			cnt, err := c.Counters()
			if err != nil {
				t.Fatal(err)
			}
			expect(t, "matched", cnt.Matched, tc.matched)
			expect(t, "packets", cnt.Packets, uint64(len(tc.frames)))
			expect(t, "ring_lost", cnt.RingLost, 0)
		})
	}
}

// TestCaptureRecordSizes captures frames on both sides of every ring record
// size class, whole and cut by a snaplen: each arrives with its own length
// and bytes.
func TestCaptureRecordSizes(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name    string
		snaplen uint32
		lens    []int // frame lengths
	}{
		{"whole frames", 262144, []int{60, 64, 65, 96, 97, 128, 129, 192, 193, 1000, 1024, 1025, 1514, 3000}},
		{"snaplen 100", 100, []int{60, 99, 100, 101, 1514}},
		{"snaplen 1", 1, []int{60, 1514}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCapture(t, "udp", tc.snaplen, false)
			var frames [][]byte
			for _, n := range tc.lens {
				// 198.19.0.1.40001 > 198.18.0.7.9: UDP, padded to n bytes on the wire
				f := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"),
					L4: &layers.UDP{SrcPort: 40001, DstPort: 9}, Payload: make([]byte, max(0, n-42))})
				f = f[:n]
				for i := 42; i < n; i++ {
					f[i] = byte(i * 7)
				}
				frames = append(frames, f)
				if _, err := c.Program().Run(&ebpf.RunOptions{Data: f}); err != nil {
					t.Fatal(err)
				}
			}
			got := drainCaptures(t, c)
			if len(got) != len(frames) {
				t.Fatalf("captured %d frames, want %d", len(got), len(frames))
			}
			for i, g := range got {
				want := min(len(frames[i]), int(tc.snaplen))
				if int(g.hdr.OrigLen) != len(frames[i]) || int(g.hdr.CapLen) != want || string(g.data) != string(frames[i][:want]) {
					t.Errorf("frame of %d bytes: orig_len %d, cap_len %d (want %d), bytes equal %v", len(frames[i]),
						g.hdr.OrigLen, g.hdr.CapLen, want, string(g.data) == string(frames[i][:want]))
				}
			}
		})
	}
}

// TestCaptureCountsTCPFlagClasses: --count-only's per-flag-class counters,
// which add up to the TCP counter.
func TestCaptureCountsTCPFlagClasses(t *testing.T) {
	a := netip.MustParseAddr
	c := loadCapture(t, "", 262144, true)
	// 198.19.0.1.40001 > 198.18.0.7.80: Flags [X], one frame per flag set
	for _, flags := range []string{"S", "SA", "R", "RA", "F", "FA", "A", "PA", "FR"} {
		f := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 80, 1, 1, flags)})
		if _, err := c.Program().Run(&ebpf.RunOptions{Data: f}); err != nil {
			t.Fatal(err)
		}
	}
	cnt, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "tcp", cnt.TCP, 9)
	expect(t, "syn", cnt.TCPSyn, 1)
	expect(t, "syn-ack", cnt.TCPSynAck, 1)
	expect(t, "rst", cnt.TCPRst, 3) // R, RA, FR
	expect(t, "fin", cnt.TCPFin, 2)
	expect(t, "other", cnt.TCPOther, 2)
}

// indexOf finds the frame with this original length.
func indexOf(frames [][]byte, origLen uint32) int {
	for i, f := range frames {
		if uint32(len(f)) == origLen {
			return i
		}
	}
	return 0
}
