package loader_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

type captured struct {
	hdr  bpf.CaptureCaptureHdr
	data []byte
}

func loadCapture(t *testing.T, expr string, snaplen uint32, countOnly bool) *loader.Capture {
	t.Helper()
	requireBPF(t)
	raw, err := filter.Compile(expr, 262144)
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: snaplen, CountOnly: countOnly, RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func drainCaptures(t *testing.T, c *loader.Capture) []captured {
	t.Helper()
	cons, err := ringbuf.New[bpf.CaptureCaptureHdr](c.Events(), ringbuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out []captured
	err = cons.RunRecords(ctx, func(h *bpf.CaptureCaptureHdr, payload []byte) {
		out = append(out, captured{*h, append([]byte(nil), payload[:h.CapLen]...)})
	})
	if err != nil {
		t.Fatal(err)
	}
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

// indexOf finds the frame with this original length.
func indexOf(frames [][]byte, origLen uint32) int {
	for i, f := range frames {
		if uint32(len(f)) == origLen {
			return i
		}
	}
	return 0
}
