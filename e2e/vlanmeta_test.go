package e2e

import (
	"net"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/testbed"
)

// pushVLAN attaches to ifname's egress, in namespace ns, a TC program that
// gives every IPv4 frame the interface sends the 802.1Q tag vid in the
// skb's metadata (bpf_skb_vlan_push), not in its bytes: what a VLAN
// device on a NIC with tx-vlan-offload does (this kernel has no 8021q).
// veth hands such a frame to its peer with the tag still in metadata.
func pushVLAN(t *testing.T, ns, ifname string, vid uint16) {
	t.Helper()
	htons := func(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word), // __sk_buff.protocol, network order
		asm.JNE.Imm(asm.R2, htons(0x0800), "out"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, htons(0x8100)),
		asm.Mov.Imm(asm.R3, int32(vid)),
		asm.FnSkbVlanPush.Call(),
		asm.Mov.Imm(asm.R0, -1).WithSymbol("out"), // TCX_NEXT: later programs (a capture) run too
		asm.Return(),
	}})
	if err != nil {
		t.Fatalf("load the VLAN push program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	err = testbed.Do(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: prog, Attach: ebpf.AttachTCXEgress})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("attach the VLAN push program to %s: %v", ifname, err)
	}
}

// TestCaptureVLANTagInMetadata: a tag the sender kept out of the frame
// reaches the target's veth in the skb's metadata. tcpdump sees it
// (libpcap puts it back in place from PACKET_AUXDATA); native XDP gets it
// from the driver (bpf_xdp_metadata_rx_vlan_tag, a device-bound program)
// and puts it back while it filters and copies, so the capture agrees
// with tcpdump frame for frame: `vlan 100` matches, `udp` matches the
// tagged UDP, the written bytes carry the tag; frames sent with a tag in
// their bytes (not pushed) and untagged IPv6 and ARP stay as they are. It
// works as uid 65534 with CAP_BPF and CAP_NET_ADMIN only. Generic XDP runs on the skb with the tag already in metadata and has no
// way to read it (capture --help says so), so --mode auto on veth takes
// received packets at TC ingress, which reads it: it agrees with tcpdump
// on the same filters.
func TestCaptureVLANTagInMetadata(t *testing.T) {
	requireTools(t, "tcpdump")
	tb := upTestbed(t, testbed.Config{})
	pushVLAN(t, tb.ScanNS(), testbed.ScanIf, 100)
	a := netip.MustParseAddr
	var mix [][]byte
	for i := range 20 {
		f := testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: mixOtherMAC, Src: a("198.19.0.1"), Dst: a("198.18.0.1"),
			L4: &layers.UDP{SrcPort: 1000, DstPort: layers.UDPPort(2000 + i)}, Payload: make([]byte, 10+i)}
		if i%4 == 1 {
			f.L4 = testpkt.TCP(80, uint16(3000+i), 1, 0, "S")
		}
		if i%5 == 2 {
			f.VLANs = []uint16{7} // in the bytes: pushed outside, QinQ
		}
		if i == 7 {
			f.VLANs = []uint16{7, 8} // three tags with the pushed one
		}
		if i%5 == 3 {
			f.Src, f.Dst = a("2001:2::1"), a("2001:2::2") // IPv6: not pushed
		}
		mix = append(mix, testpkt.Build(f))
	}
	mix = append(mix, arpFrame(nil, 1, mixOtherMAC))
	for _, expr := range []string{"", "vlan", "vlan 100", "vlan 100 and udp", "udp", "tcp", "not vlan", "vlan and vlan 7", "ip6", "arp", "greater 60"} {
		native := diffOne(t, tb, "native", expr, mix)
		auto := diffOne(t, tb, "auto", expr, mix)
		if expr == "" {
			checkTagCounts(t, "native", native)
			checkTagCounts(t, "auto (TC ingress)", auto)
		}
	}

	t.Run("unprivileged", func(t *testing.T) {
		want := 0
		for _, f := range knownTraffic() {
			if len(f) > 14 && f[12] == 0x08 && f[13] == 0x00 { // IPv4 in the bytes: pushed
				want++
			}
		}
		dir := nobodyDir(t)
		st := runCaptureWrapped(t, tb, asNobody("bpf", "net_admin"), dir, "--mode", "native", "-Q", "in", "-w", dir+"/v.pcap", "vlan 100")
		if st.Matched != uint64(want) || st.Written != uint64(want) || want == 0 {
			t.Fatalf("matched %d, written %d, want %d (the IPv4 frames, tagged in metadata)", st.Matched, st.Written, want)
		}
	})
}

// checkTagCounts holds an unfiltered capture's counters to the frames
// tcpdump wrote, tags in place: a tag kept in metadata counts its 4 bytes
// and makes the frame a tagged one, once however many tags it has, and
// the protocol counts see through every tag, as for a frame with its tags
// in the bytes.
func checkTagCounts(t *testing.T, mode string, got diffResult) {
	t.Helper()
	var want loader.Counters
	for _, f := range got.tcpdump {
		want.Packets++
		want.Bytes += uint64(f.length)
		p := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
		if p.Layer(layers.LayerTypeDot1Q) != nil {
			want.VLAN++
		}
		switch {
		case p.Layer(layers.LayerTypeIPv4) != nil:
			want.IPv4++
		case p.Layer(layers.LayerTypeIPv6) != nil:
			want.IPv6++
		default:
			want.NonIP++
		}
		switch {
		case p.Layer(layers.LayerTypeTCP) != nil:
			want.TCP++
		case p.Layer(layers.LayerTypeUDP) != nil:
			want.UDP++
		}
	}
	c := got.Counters
	have := loader.Counters{Packets: c.Packets, Bytes: c.Bytes, VLAN: c.VLAN, IPv4: c.IPv4, IPv6: c.IPv6, NonIP: c.NonIP, TCP: c.TCP, UDP: c.UDP}
	if have != want || want.VLAN == 0 {
		t.Errorf("%s: counted %+v, want %+v (tcpdump's %d frames, tags in place)", mode, have, want, len(got.tcpdump))
	}
}

// TestCaptureVLANTagInMetadataTC: the TC programs see a tag in the skb's
// metadata too, and write it back in place as tcpdump does: on what the
// interface sends (-Q out, after a program that pushed the tag on the
// way out, as tx-vlan-offload leaves it) and on what it receives beside
// another XDP program (TC ingress, where the kernel has moved every outer
// tag into metadata, the pushed ones and those sent in the bytes).
func TestCaptureVLANTagInMetadataTC(t *testing.T) {
	requireTools(t, "tcpdump")
	var mix [][]byte
	for i, f := range knownTraffic() {
		if i%5 == 0 {
			mix = append(mix, f)
		}
	}
	mix = append(mix, vlanMix()...)
	filters := []string{"", "vlan", "vlan 100", "vlan 100 and udp", "udp", "tcp", "not vlan", "vlan and vlan 100", "ip6", "greater 100"}
	t.Run("sent", func(t *testing.T) {
		t.Parallel()
		tb := upTestbed(t, testbed.Config{})
		pushVLAN(t, tb.TargetNS(), testbed.TargetIf, 100)
		for _, expr := range filters {
			diffDir(t, tb, "generic", "out", expr, mix)
		}
	})
	t.Run("received beside another XDP program", func(t *testing.T) {
		t.Parallel()
		obj := foreignXDP(t)
		tb := upTestbed(t, testbed.Config{})
		pushVLAN(t, tb.ScanNS(), testbed.ScanIf, 100)
		ns := []string{"ip", "netns", "exec", tb.TargetNS(), "ip", "link", "set", "dev", testbed.TargetIf}
		if out, err := exec.Command(ns[0], append(ns[1:], "xdpgeneric", "obj", obj, "sec", "xdp")...).CombinedOutput(); err != nil {
			t.Fatalf("attach the foreign program: %v\n%s", err, out)
		}
		defer exec.Command(ns[0], append(ns[1:], "xdpgeneric", "off")...).Run()
		for _, expr := range filters {
			diffOne(t, tb, "generic", expr, mix)
		}
	})
}
