package filter

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// socketView is the packet and the VLAN ancillary values a Linux socket
// filter has for a received frame: an outer 802.1Q/802.1ad tag leaves the
// data for metadata (skb_vlan_untag), anything else stays as it is.
func socketView(frame []byte) (pkt []byte, present, tci, tpid uint32) {
	if len(frame) >= 20 { // skb_vlan_untag drops a shorter tagged frame
		switch binary.BigEndian.Uint16(frame[12:]) {
		case 0x8100, 0x88a8:
			pkt = append(append([]byte(nil), frame[:12]...), frame[16:]...)
			return pkt, 1, uint32(binary.BigEndian.Uint16(frame[14:])), uint32(binary.BigEndian.Uint16(frame[12:]))
		}
	}
	return frame, 0, 0, 0
}

// withAncillary is prog with each ancillary load replaced by the constant
// the kernel would load: what x/net/bpf's VM, which has no metadata, can
// run as the reference. packetType is SKF_AD_PKTTYPE's value.
func withAncillary(t testing.TB, prog []bpf.Instruction, present, tci, tpid, packetType uint32) []bpf.Instruction {
	out := make([]bpf.Instruction, len(prog))
	for i, ins := range prog {
		out[i] = ins
		ext, ok := ins.(bpf.LoadExtension)
		if !ok {
			continue
		}
		v := map[bpf.Extension]uint32{bpf.ExtVLANTagPresent: present, bpf.ExtVLANTag: tci, bpf.ExtVLANProto: tpid, bpf.ExtType: packetType}
		if val, ok := v[ext.Num]; ok {
			out[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: val}
		} else if ext.Num != bpf.ExtLen {
			t.Fatalf("instruction %d: ancillary load %d the reference does not know", i, ext.Num)
		}
	}
	return out
}

// TestTranslateGivesTheSocketFilterView: the code libpcap compiles for a
// live Linux handle (CompileLive, SKF_AD_* loads), translated for frames
// with an outer tag (Shape{Tagged: true}) and without (Shape{}), gives on
// each frame XDP sees what x/net/bpf's VM gives on the packet a Linux
// socket filter sees, with the ancillary loads answered as the kernel
// answers them.
func TestTranslateGivesTheSocketFilterView(t *testing.T) {
	bpftest.Require(t)
	a := netip.MustParseAddr
	frames := packets(rand.New(rand.NewPCG(3, 4)))
	// Tags of every kind: 802.1Q with priority bits, 802.1ad outer
	// (QinQ), 802.1Q twice, 0x9100 (which the kernel leaves in the frame),
	// and frames too short for skb_vlan_untag, which the capture program
	// never filters.
	for _, vl := range [][]uint16{{100}, {200}, {300, 100}, {100, 200}} {
		for _, f := range []testpkt.Frame{
			{VLANs: vl, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")},
			{VLANs: vl, Src: a("198.19.0.1"), Dst: a("198.18.0.53"), L4: &layers.UDP{SrcPort: 53, DstPort: 1500}, Payload: make([]byte, 200)},
			{VLANs: vl, Src: a("2001:2::1"), Dst: a("2001:2::2"), L4: testpkt.TCP(1, 80, 1, 0, "SA")},
			{VLANs: vl, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), IPOptions: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}, L4: testpkt.TCP(1, 443, 1, 0, "S")},
		} {
			b := testpkt.Build(f)
			frames = append(frames, b)
			pcp := append([]byte(nil), b...)
			pcp[14] |= 0xe0
			frames = append(frames, pcp)
			q := append([]byte(nil), b...)
			q[12], q[13] = 0x91, 0x00
			frames = append(frames, q)
			if len(vl) == 2 {
				dq := append([]byte(nil), b...)
				dq[12], dq[13] = 0x81, 0x00
				frames = append(frames, dq)
			}
		}
	}
	exprs := append([]string{"vlan 300 and vlan 100", "vlan and vlan", "inbound", "outbound", "not inbound and tcp",
		"vlan and ether[12:4] != 0", "ether[10:4] != 0 and vlan 100", "ether[len - 4:4] != 7", "vlan and ip[ip[0]&0xf:2] != 0"}, realWorldFilters...)
	for _, tagged := range []bool{false, true} {
		shape := Shape{Tagged: tagged}
		name := "untagged"
		if tagged {
			name = "tagged"
		}
		t.Run(name, func(t *testing.T) {
			checked := 0
			for _, expr := range exprs {
				raw, err := CompileLive(context.Background(), "lo", expr, 262144)
				if err != nil {
					t.Fatalf("compile %q for a live handle: %v", expr, err)
				}
				insns := mustDisassemble(t, raw)
				own := load(t, raw, false, shape)
				inline := load(t, raw, true, shape)
				for _, f := range frames {
					pkt, present, tci, tpid := socketView(f)
					if outerTagged(f) != tagged || (tagged && len(f) < 20) {
						continue // the capture program runs this copy on the other frames
					}
					vm, err := bpf.NewVM(withAncillary(t, insns, present, tci, tpid, packetHost))
					if err != nil {
						t.Fatalf("%q: reference VM: %v", expr, err)
					}
					want, err := vm.Run(pkt)
					if err != nil {
						t.Fatal(err)
					}
					for _, h := range []*harness{own, inline} {
						if h == nil {
							continue
						}
						if got := h.run(t, f); got != uint32(want) {
							t.Errorf("%q on % x: eBPF %d, Linux socket filter %d", expr, f, got, want)
						}
					}
					checked++
				}
			}
			t.Logf("%d filter runs checked", checked)
		})
	}
}

func outerTagged(f []byte) bool {
	return len(f) >= 14 && (binary.BigEndian.Uint16(f[12:]) == 0x8100 || binary.BigEndian.Uint16(f[12:]) == 0x88a8)
}
