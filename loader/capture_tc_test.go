package loader_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

// tcUnspec is TC_ACT_UNSPEC as BPF_PROG_RUN returns it: the egress
// program's only verdict, "the next program decides".
const tcUnspec = 0xffffffff

func loadEgress(t testing.TB, expr string, snaplen uint32, countOnly bool, ring *ebpf.Map) *loader.CaptureEgress {
	t.Helper()
	bpftest.Require(t)
	raw, err := filter.Compile(expr, 262144)
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.LoadCaptureEgress(loader.CaptureConfig{Filter: raw, Snaplen: snaplen, CountOnly: countOnly, RingBytes: 1 << 16}, ring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEgressFiltersLikeLibpcap holds the egress program's filter (the same
// translation as the XDP program's, on a __sk_buff) to libpcap's filter in
// the classic VM, over the capture program's corpus and every truncation
// down to an Ethernet header: the two directions filter alike.
func TestEgressFiltersLikeLibpcap(t *testing.T) {
	corpus := countCorpus()
	for _, expr := range shapeProbes {
		t.Run(expr, func(t *testing.T) {
			vm := classicVM(t, expr)
			egress := loadEgress(t, expr, 262144, true, nil)
			for name, frame := range corpus {
				for n := len(frame); n >= 14; n-- {
					f := frame[:n]
					keep, _ := vm.Run(f)
					d, ok := runEgress(t, egress, f)
					if !ok {
						continue
					}
					if d.Matched != min(uint64(keep), 1) {
						t.Fatalf("%s, %s: the egress program matched %d, libpcap's filter keeps %d bytes", name, describeCut(n, len(frame)), d.Matched, keep)
					}
					if d.Packets != 1 || d.Bytes != uint64(n) {
						t.Fatalf("%s, %s: counted %d packets, %d bytes; want 1, %d", name, describeCut(n, len(frame)), d.Packets, d.Bytes, n)
					}
				}
			}
		})
	}
}

// runEgress is runOne for the TC program, whose BPF_PROG_RUN refuses
// (EINVAL) an IPv4 or IPv6 frame shorter than its IP header: the kernel
// builds no such skb to send, so those cuts have no egress to test. ok is
// false for them.
func runEgress(t testing.TB, p *loader.CaptureEgress, frame []byte) (d loader.Counters, ok bool) {
	t.Helper()
	before, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Program().Run(&ebpf.RunOptions{Data: frame}); err != nil {
		ethertype := binary.BigEndian.Uint16(frame[12:])
		ipHeader := map[uint16]int{0x0800: 14 + 20, 0x86dd: 14 + 40}[ethertype]
		if errors.Is(err, unix.EINVAL) && len(frame) < ipHeader {
			return d, false
		}
		t.Fatalf("BPF_PROG_RUN of %d bytes: %v", len(frame), err)
	}
	after, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return after.Sub(before), true
}

// TestEgressCaptureSharesTheRing runs the egress program, loaded with the
// XDP capture program's ring, and the XDP program on the same frames: both
// directions' records arrive in the one ring, each saying its direction,
// with the same bytes and the snaplen applied.
func TestEgressCaptureSharesTheRing(t *testing.T) {
	a := netip.MustParseAddr
	// 198.19.0.1.40001 > 198.18.0.7.443: Flags [S], 200 bytes of payload
	https := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S"), Payload: make([]byte, 200)})
	// 198.19.0.1.40001 > 198.18.0.7.80: Flags [S]
	http := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 80, 1, 0, "S")})
	for _, tc := range []struct {
		name    string
		snaplen uint32
		wantLen int
	}{
		{"whole", 262144, len(https)},
		{"snaplen 100", 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := loadCapture(t, "tcp port 443", tc.snaplen, false)
			out := loadEgress(t, "tcp port 443", tc.snaplen, false, in.Events())
			for _, f := range [][]byte{https, http} {
				if v, err := in.Program().Run(&ebpf.RunOptions{Data: f}); err != nil || v != xdpPass {
					t.Fatalf("XDP: verdict %d, %v", v, err)
				}
				if v, err := out.Program().Run(&ebpf.RunOptions{Data: f}); err != nil || v != tcUnspec {
					t.Fatalf("TC: verdict %#x, %v; want TC_ACT_UNSPEC (the next program decides)", v, err)
				}
			}
			got := drainCaptures(t, in)
			if len(got) != 2 {
				t.Fatalf("%d records in the shared ring, want 2 (one per direction)", len(got))
			}
			for i, g := range got {
				if g.hdr.Dir != uint32(i) {
					t.Errorf("record %d: dir %d, want %d (XDP inbound first, then TC outbound)", i, g.hdr.Dir, i)
				}
				if int(g.hdr.CapLen) != tc.wantLen || int(g.hdr.OrigLen) != len(https) || string(g.data) != string(https[:tc.wantLen]) {
					t.Errorf("record %d: cap_len %d of %d, want %d of %d with the frame's bytes", i, g.hdr.CapLen, g.hdr.OrigLen, tc.wantLen, len(https))
				}
			}
			cnt, err := out.Counters()
			if err != nil {
				t.Fatal(err)
			}
			expect(t, "egress packets", cnt.Packets, 2)
			expect(t, "egress matched", cnt.Matched, 1)
			expect(t, "egress ring_lost", cnt.RingLost, 0)
		})
	}
}

// TestEgressProgramLoadsWithDocumentedCapabilities: capture -Q out needs
// no more than capture: CAP_BPF and CAP_NET_ADMIN.
func TestEgressProgramLoadsWithDocumentedCapabilities(t *testing.T) {
	bpftest.Require(t)
	for _, expr := range []string{"", "tcp port 80", "greater 100", "len == 60", "ip[ip[9]] == 0", "vlan and tcp",
		"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "len - 14 > 50 and udp"} {
		for _, countOnly := range []bool{false, true} {
			t.Run(expr, func(t *testing.T) {
				raw, err := filter.Compile(expr, 128)
				if err != nil {
					t.Fatal(err)
				}
				capstest.WithEffective(t, documented[:2], func() {
					c, err := loader.LoadCaptureEgress(loader.CaptureConfig{Filter: raw, Snaplen: 128, CountOnly: countOnly, RingBytes: 1 << 16}, nil)
					if err != nil {
						t.Fatalf("with %s only: %v", capstest.Names(documented[:2]), short(err))
					}
					c.Close()
				})
			})
		}
	}
}

// Only a filter that keeps every packet up to the snaplen lets the TC
// program write frames it cannot filter (no MAC header in view, after a
// generic XDP program with xdp.frags): libpcap's code for no expression.
func TestKeepsAll(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expr    string
		compile int
		snaplen uint32
		want    bool
	}{
		{"no expression", "", 262144, 262144, true},
		{"no expression, -s 128", "", 128, 128, true},
		{"no expression, a larger snaplen than compiled", "", 128, 262144, false},
		{"udp", "udp", 262144, 262144, false},
		{"less 100", "less 100", 262144, 262144, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := filter.Compile(tc.expr, tc.compile)
			if err != nil {
				t.Fatal(err)
			}
			if got := loader.KeepsAll(prog, tc.snaplen); got != tc.want {
				t.Errorf("keepsAll(%q compiled for %d, snaplen %d) = %v, want %v", tc.expr, tc.compile, tc.snaplen, got, tc.want)
			}
		})
	}
}
