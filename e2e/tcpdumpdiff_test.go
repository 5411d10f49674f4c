package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/testbed"
)

// mixOtherMAC is the destination of every unicast frame of the mix: not
// the target's address, so the target's kernel takes each for another
// host's (PACKET_OTHERHOST) and answers none of them. Only what the test
// sends reaches the target's interface while tcpdump and xdpscan listen.
var mixOtherMAC = net.HardwareAddr{0x02, 0x58, 0x53, 0, 0, 0x99}

// vlanMix is the differential test's traffic: untagged, 802.1Q (with
// priority bits), QinQ (802.1ad outer, and 802.1Q twice), a 0x9100 outer
// tag (which libpcap's `vlan` tests inline and the kernel leaves in the
// frame), IPv4 with options, IPv4 and IPv6 fragments, IPv6 extension
// headers, every TCP flag combination, UDP across port ranges, ICMP and
// ICMPv6 echoes and errors, ARP, and sizes from 60 to 1514 bytes.
func vlanMix() [][]byte {
	a := netip.MustParseAddr
	var out [][]byte
	add := func(f testpkt.Frame, fix func([]byte)) {
		if f.DstMAC == nil {
			f.DstMAC = mixOtherMAC
		}
		f.SrcMAC = testbed.ScanMAC
		b := testpkt.Build(f)
		if fix != nil {
			fix(b)
		}
		out = append(out, b)
	}
	// tcpFlags is a TCP header with all 8 flag bits from bits.
	tcpFlags := func(sport, dport uint16, bits uint8) *layers.TCP {
		return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: uint32(bits) << 8, Window: 1024,
			FIN: bits&0x01 != 0, SYN: bits&0x02 != 0, RST: bits&0x04 != 0, PSH: bits&0x08 != 0,
			ACK: bits&0x10 != 0, URG: bits&0x20 != 0, ECE: bits&0x40 != 0, CWR: bits&0x80 != 0}
	}
	priority := func(pcp uint8) func([]byte) { // PCP bits in the outer tag's TCI
		return func(b []byte) { b[14] |= pcp << 5 }
	}
	tpid := func(outer uint16) func([]byte) {
		return func(b []byte) { b[12], b[13] = byte(outer>>8), byte(outer) }
	}
	vlanSets := [][]uint16{nil, {100}, {200}, {300, 100}}
	// Every TCP flag combination, untagged over IPv4; a quarter of them
	// again in each tagged form and over IPv6.
	for bits := range 256 {
		b := uint8(bits)
		add(testpkt.Frame{Src: a("198.19.0.1"), Dst: netip.AddrFrom4([4]byte{198, 18, 0, b}), L4: tcpFlags(40000+uint16(b), 80, b)}, nil)
		if bits%4 == 0 {
			vl := vlanSets[1+(bits/4)%3]
			add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.2"), Dst: a("198.18.1.7"), L4: tcpFlags(1024+uint16(b), 22, b),
				Payload: make([]byte, int(b))}, nil)
			add(testpkt.Frame{Src: a("2001:2::1"), Dst: a("2001:2:0:1::5"), L4: tcpFlags(5000, uint16(b)*7, b)}, nil)
		}
	}
	// UDP across port ranges and sizes, each VLAN form.
	for i := range 48 {
		vl := vlanSets[i%4]
		size := []int{0, 18, 100, 400, 1000, 1400}[i%6]
		add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.3"), Dst: netip.AddrFrom4([4]byte{198, 18, byte(i % 3), byte(i)}),
			L4: &layers.UDP{SrcPort: 53000, DstPort: layers.UDPPort(900 + 50*i)}, Payload: make([]byte, size)}, nil)
		add(testpkt.Frame{VLANs: vl, Src: a("2001:2::3"), Dst: a("2001:2:0:2::9"),
			L4: &layers.UDP{SrcPort: 53, DstPort: layers.UDPPort(4990 + 5*i)}, Payload: make([]byte, size)}, nil)
	}
	// Priority bits, a 0x9100 outer tag, 802.1Q twice.
	add(testpkt.Frame{VLANs: []uint16{100}, Src: a("198.19.0.4"), Dst: a("198.18.0.5"), L4: testpkt.TCP(999, 80, 1, 0, "S")}, priority(5))
	add(testpkt.Frame{VLANs: []uint16{200}, Src: a("198.19.0.4"), Dst: a("198.18.0.5"), L4: testpkt.TCP(999, 80, 1, 0, "S")}, tpid(0x9100))
	add(testpkt.Frame{VLANs: []uint16{300, 100}, Src: a("198.19.0.4"), Dst: a("198.18.0.5"), L4: testpkt.TCP(999, 443, 1, 0, "PA")}, tpid(0x8100))
	add(testpkt.Frame{VLANs: []uint16{400, 200}, Src: a("2001:2::4"), Dst: a("2001:2::5"), L4: &layers.UDP{SrcPort: 1, DstPort: 1500}}, nil)
	// IPv4 options (router alert, NOP padding), tagged and not.
	for _, vl := range vlanSets {
		opts := []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.5"), Dst: a("198.18.0.9"), IPOptions: opts, L4: testpkt.TCP(1234, 80, 7, 0, "S")}, nil)
		add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.5"), Dst: a("198.18.0.9"), IPOptions: opts, L4: &layers.UDP{SrcPort: 5, DstPort: 1500}, Payload: make([]byte, 30)}, nil)
	}
	// Fragments: IPv4 first and later, IPv6 first and later.
	for _, vl := range vlanSets {
		add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.6"), Dst: a("198.18.0.10"), MoreFragments: true, L4: &layers.UDP{SrcPort: 7, DstPort: 1999}, Payload: make([]byte, 64)}, nil)
		add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.6"), Dst: a("198.18.0.10"), FragOffset: 9, Proto: layers.IPProtocolUDP, Payload: make([]byte, 64)}, nil)
		add(testpkt.Frame{VLANs: vl, Src: a("2001:2::6"), Dst: a("2001:2::10"), IPv6Ext: []testpkt.Ext{testpkt.Fragment6(0, true)}, L4: &layers.UDP{SrcPort: 7, DstPort: 1999}, Payload: make([]byte, 64)}, nil)
		add(testpkt.Frame{VLANs: vl, Src: a("2001:2::6"), Dst: a("2001:2::10"), IPv6Ext: []testpkt.Ext{testpkt.Fragment6(9, false)}, Proto: layers.IPProtocolUDP, Payload: make([]byte, 64)}, nil)
		// Extension headers before TCP.
		add(testpkt.Frame{VLANs: vl, Src: a("2001:2::7"), Dst: a("2001:2::11"), IPv6Ext: []testpkt.Ext{testpkt.HopByHop(), testpkt.DestOpts()}, L4: testpkt.TCP(2000, 80, 3, 0, "S")}, nil)
	}
	// ICMP and ICMPv6: echoes and errors quoting a UDP datagram.
	quote4 := testpkt.Build(testpkt.Frame{Src: a("198.18.0.12"), Dst: a("198.19.0.7"), L4: &layers.UDP{SrcPort: 1000, DstPort: 53}})[14:]
	quote6 := testpkt.Build(testpkt.Frame{Src: a("2001:2::12"), Dst: a("2001:2::7"), L4: &layers.UDP{SrcPort: 1000, DstPort: 53}})[14:]
	for _, vl := range vlanSets {
		for _, tc := range [][2]uint8{{8, 0}, {0, 0}, {3, 3}, {3, 1}, {11, 0}} {
			var payload []byte
			if tc[0] == 3 || tc[0] == 11 {
				payload = quote4
			}
			add(testpkt.Frame{VLANs: vl, Src: a("198.19.0.7"), Dst: a("198.18.0.12"),
				L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(tc[0], tc[1]), Id: 9, Seq: 1}, Payload: payload}, nil)
		}
		for _, tc := range [][2]uint8{{128, 0}, {129, 0}, {1, 4}, {2, 0}, {3, 0}} {
			var payload []byte
			if tc[0] < 128 {
				payload = append([]byte{0, 0, 5, 0xdc}, quote6...)
			}
			add(testpkt.Frame{VLANs: vl, Src: a("2001:2::7"), Dst: a("2001:2::12"),
				L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(tc[0], tc[1])}, Payload: payload}, nil)
		}
	}
	// ARP: requests (broadcast) for an address nobody on the link owns,
	// and a reply, untagged and tagged.
	for i, vl := range vlanSets {
		op := uint16(layers.ARPRequest)
		dst := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		if i == 3 {
			op, dst = layers.ARPReply, mixOtherMAC
		}
		out = append(out, arpFrame(vl, op, dst))
	}
	return out
}

// arpFrame is an ARP frame about 198.19.255.x, which no namespace owns.
func arpFrame(vlans []uint16, op uint16, dst net.HardwareAddr) []byte {
	// Ethernet and tag types chain outermost first, as testpkt.Build's.
	types := []layers.EthernetType{}
	for i := range vlans {
		if len(vlans) == 2 && i == 0 {
			types = append(types, layers.EthernetTypeQinQ)
		} else {
			types = append(types, layers.EthernetTypeDot1Q)
		}
	}
	types = append(types, layers.EthernetTypeARP)
	stack := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: testbed.ScanMAC, DstMAC: dst, EthernetType: types[0]}}
	for i, id := range vlans {
		stack = append(stack, &layers.Dot1Q{VLANIdentifier: id, Type: types[i+1]})
	}
	stack = append(stack, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op, SourceHwAddress: testbed.ScanMAC,
		SourceProtAddress: []byte{198, 19, 255, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{198, 19, 255, 2}})
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, stack...); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// tcpdumpDiffFilters are the differential test's filters: VLAN tests on
// the metadata tag and the inline QinQ one, every protocol of the mix,
// header fields, lengths, nets and port ranges.
var tcpdumpDiffFilters = []string{
	"",
	"vlan",
	"not vlan",
	"vlan 100",
	"vlan 100 and tcp",
	"vlan and vlan 100",
	"vlan 300 and vlan 100",
	"vlan and vlan and tcp port 443",
	"vlan and ip6",
	"tcp",
	"udp",
	"ip",
	"ip6",
	"arp",
	"icmp",
	"icmp6",
	"icmp[icmptype] == icmp-unreach",
	"icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
	"icmp6 and ip6[40] == 1",
	"tcp[tcpflags] & tcp-syn != 0",
	"tcp[tcpflags] == tcp-syn|tcp-ack",
	"tcp[tcpflags] & (tcp-rst|tcp-fin) != 0",
	"tcp[13] & 0xc0 != 0",
	"greater 200",
	"less 100",
	"len >= 1000 and udp",
	"net 198.18.0.0/24",
	"src net 198.19.0.0/16 and tcp",
	"net 2001:2::/64",
	"portrange 1000-2000",
	"tcp portrange 20-30 or udp portrange 5000-5100",
	"ip[6:2] & 0x3fff != 0",
	"ip[0] & 0xf > 5",
	"ip6 and ip6[6] == 0",
	"ether broadcast",
	// Not `inbound`: libpcap filters the frames of its ring's first
	// block again in user space after installing the kernel filter, and
	// there an SKF_AD_PKTTYPE load rejects the frame, so tcpdump -i X
	// inbound misses the first frame that matches (measured: 555 of 556,
	// and 2 of 3 with `inbound and arp`). `outbound` matches nothing in
	// either; filter.TestTranslateGivesTheSocketFilterView checks inbound.
	"outbound",
	"arp or outbound",
	"host 198.18.0.5",
	"ether proto 0x88a8",
	"udp[8:4] == 0",
}

// TestCaptureAgreesWithTcpdump runs tcpdump and xdpscan capture side by
// side on the target's interface, one filter at a time, while the
// scanner's namespace sends vlanMix from an AF_PACKET socket, for each
// XDP mode, and auto (on veth: TC ingress, where XDP would be generic):
// xdpscan matches and writes exactly what tcpdump records, byte for byte
// (tcpdump -Q in: XDP sees received frames).
func TestCaptureAgreesWithTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	mix := vlanMix()
	for _, mode := range []string{"native", "generic", "auto"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tb := upTestbed(t, testbed.Config{})
			start := time.Now()
			filters := tcpdumpDiffFilters
			if f := os.Getenv("XDPSCAN_DIFF_FILTER"); f != "" {
				filters = []string{f} // one filter, to look into a disagreement
			}
			for _, expr := range filters {
				diffOne(t, tb, mode, expr, mix)
			}
			t.Logf("%d filters x %d frames in %.1fs", len(filters), len(mix), time.Since(start).Seconds())
		})
	}
}

// TestCaptureAgreesWithTcpdumpSent is the same differential on what the
// target sends (-Q out: the TC egress program against tcpdump -Q out),
// the mix sent by a packet socket on the target, every filter.
func TestCaptureAgreesWithTcpdumpSent(t *testing.T) {
	requireTools(t, "tcpdump")
	mix := vlanMix()
	tb := upTestbed(t, testbed.Config{})
	for _, expr := range tcpdumpDiffFilters {
		if strings.Contains(expr, "outbound") {
			// tcpdump misses the first sent frame `outbound` matches,
			// as it misses the first received one `inbound` matches (see
			// tcpdumpDiffFilters): 555 of the 556 sent, measured. Every
			// sent frame is outbound: xdpscan's count is checked below.
			continue
		}
		diffDir(t, tb, "generic", "out", expr, mix)
	}
	stats := filepath.Join(t.TempDir(), "stats.json")
	c := startBg(t, "xdpscan", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "-Q", "out", "--count-only",
		"--duration", "30s", "--stats-json", stats, "outbound and not inbound")
	sendRaw(t, tb.TargetNS(), testbed.TargetIf, mix, 32, time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	c.stop(t)
	var st struct{ Matched uint64 }
	if b, err := os.ReadFile(stats); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Matched != uint64(len(mix)) {
		t.Fatalf("'outbound and not inbound' matched %d sent frames, want all %d", st.Matched, len(mix))
	}
}

// diffOne captures mix with tcpdump and xdpscan at once with filter expr,
// as the target receives it.
func diffOne(t *testing.T, tb *testbed.Testbed, mode, expr string, mix [][]byte, extra ...string) diffResult {
	t.Helper()
	return diffDir(t, tb, mode, "in", expr, mix, extra...)
}

// diffResult is what diffDir's capture counted (--stats-json) and the
// frames tcpdump wrote.
type diffResult struct {
	Seen, Matched, Written, RingLost uint64
	Counters                         loader.Counters `json:"xdp_counters"`
	tcpdump                          []pcapFrame
}

// diffDir is diffOne for what the target receives (q "in": the scanner
// sends mix; xdpscan as by default, -Q inout, tcpdump -Q in: the mix's
// frames are for another host and draw no answer) or sends (q "out": the
// target sends mix; both -Q out).
func diffDir(t *testing.T, tb *testbed.Testbed, mode, q, expr string, mix [][]byte, extra ...string) diffResult {
	t.Helper()
	if q == "out" {
		extra = append([]string{"-Q", "out"}, extra...)
	}
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "xdpscan.pcap"), filepath.Join(dir, "tcpdump.pcap")
	stats := filepath.Join(dir, "stats.json")
	args := []string{"netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "--mode", mode,
		"--duration", "30s", "--stats-json", stats, "-w", ours}
	args = append(args, extra...)
	if expr != "" {
		args = append(args, expr)
	}
	xcmd := exec.Command("ip", args...)
	var xerr lockedBuffer
	xcmd.Stderr = &xerr
	targs := []string{"netns", "exec", tb.TargetNS(), "tcpdump", "-i", testbed.TargetIf, "-Q", q, "-p", "-n", "-s", "0",
		"-B", "4096", "-Z", "root", "--immediate-mode", "-U", "-w", theirs}
	if expr != "" {
		targs = append(targs, expr)
	}
	tcmd := exec.Command("ip", targs...)
	var terr lockedBuffer
	tcmd.Stderr = &terr
	if err := xcmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := tcmd.Start(); err != nil {
		xcmd.Process.Kill()
		xcmd.Wait()
		t.Fatal(err)
	}
	stop := func() {
		xcmd.Process.Signal(syscall.SIGINT)
		tcmd.Process.Signal(syscall.SIGINT)
	}
	// Both print "listening on" once packets are being captured
	// (xdpscan's after its counters' first reading).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if strings.Contains(xerr.String(), "listening on") && strings.Contains(terr.String(), "listening on") {
			break
		}
		if time.Now().After(deadline) {
			stop()
			xcmd.Wait()
			tcmd.Wait()
			t.Fatalf("%q: not both listening:\nxdpscan: %s\ntcpdump: %s", expr, xerr.String(), terr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if q == "out" {
		sendRaw(t, tb.TargetNS(), testbed.TargetIf, mix, 32, time.Millisecond)
	} else {
		sendBursts(t, tb, mix)
	}
	// tcpdump stops reading at SIGINT, leaving what its ring still holds
	// (xdpscan drains its ring first): wait until its file (-U: written a
	// packet at a time) has stopped growing. A busy VM lost the last
	// frames to a fixed 100 ms wait.
	settle(theirs)
	stop()
	if err := xcmd.Wait(); err != nil {
		tcmd.Wait()
		t.Fatalf("%q: xdpscan capture: %v\n%s", expr, err, xerr.String())
	}
	if err := tcmd.Wait(); err != nil {
		t.Fatalf("%q: tcpdump: %v\n%s", expr, err, terr.String())
	}
	if !strings.Contains(terr.String(), "\n0 packets dropped by kernel") {
		t.Logf("%s %q: tcpdump: %s", mode, expr, terr.String())
	}
	var st diffResult
	if b, err := os.ReadFile(stats); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	want := readPcapFrames(t, theirs)
	st.tcpdump = want
	got := readPcapFrames(t, ours)
	if st.Seen != uint64(len(mix)) {
		// A frame lost before both (veth's ring under a busy CPU) is
		// lost to both: the comparison below still holds.
		t.Logf("%s %q: XDP saw %d frames, %d were sent", mode, expr, st.Seen, len(mix))
	}
	if st.Matched != uint64(len(want)) || st.Written != uint64(len(want)) || len(got) != len(want) {
		t.Errorf("%s %q: xdpscan matched %d, wrote %d (file %d); tcpdump %d; first frame only one has: %s", mode, expr, st.Matched, st.Written, len(got), len(want), firstUnshared(got, want))
		return st
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i].data) || got[i].length != want[i].length {
			t.Errorf("%s %q: frame %d differs:\nxdpscan (len %d, %d kept) % x\ntcpdump (len %d, %d kept) % x", mode, expr, i,
				got[i].length, len(got[i].data), got[i].data[:min(len(got[i].data), 64)], want[i].length, len(want[i].data), want[i].data[:min(len(want[i].data), 64)])
			return st
		}
	}
	t.Logf("%s %q: %d of %d frames, the same as tcpdump's", mode, expr, len(got), len(mix))
	return st
}

type pcapFrame struct {
	data   []byte
	length int
}

// readPcapFrames reads every frame of a pcap or pcapng file with pcapgo.
func readPcapFrames(t *testing.T, path string) []pcapFrame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var next func() ([]byte, gopacket.CaptureInfo, error)
	if r, err := pcapgo.NewReader(f); err == nil {
		next = r.ReadPacketData
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		ng, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: neither pcap nor pcapng: %v", path, err)
		}
		next = ng.ReadPacketData
	}
	var out []pcapFrame
	for {
		data, ci, err := next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, pcapFrame{data: append([]byte(nil), data...), length: ci.Length})
	}
}

// sendBursts sends frames from the scanner's namespace in bursts of 32,
// well inside veth's 256-frame ring, with a pause between them that lets
// the target's softirq (and tcpdump, and xdpscan's reader) catch up: the
// mix takes ~20 ms, not the ~0.5 s of a pause per frame on a busy VM.
func sendBursts(t *testing.T, tb *testbed.Testbed, frames [][]byte) {
	t.Helper()
	sendRaw(t, tb.ScanNS(), testbed.ScanIf, frames, 32, time.Millisecond)
}

// TestCaptureJumboFrames: on a veth with MTU 9000, frames of 9014 bytes
// (and a tagged one of 9018) are captured whole with -s 0 in both XDP
// modes, and filters that read their length and bytes past the first
// buffer of a multi-buffer frame (xdp.frags) agree with tcpdump.
func TestCaptureJumboFrames(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	a := netip.MustParseAddr
	var mix [][]byte
	for i, size := range []int{9014 - 42, 9000 - 42, 4000, 1500 - 28, 18} {
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(j)
		}
		if size > 8100 {
			copy(payload[8000-8:], []byte{1, 2, 3, 4}) // udp[8000:4]
		}
		f := testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: mixOtherMAC, Src: a("198.19.0.1"), Dst: a("198.18.0.1"),
			L4: &layers.UDP{SrcPort: 1000, DstPort: layers.UDPPort(2000 + i)}, Payload: payload}
		mix = append(mix, testpkt.Build(f))
		if i == 0 {
			f.VLANs = []uint16{100}
			mix = append(mix, testpkt.Build(f))
		}
	}
	if n := len(mix[0]); n != 9014 {
		t.Fatalf("the largest frame is %d bytes, want 9014", n)
	}
	jumboTestbed := func(t *testing.T) *testbed.Testbed {
		tb := upTestbed(t, testbed.Config{})
		for _, c := range [][]string{{"ip", "netns", "exec", tb.ScanNS(), "ip", "link", "set", "dev", testbed.ScanIf, "mtu", "9000"},
			{"ip", "netns", "exec", tb.TargetNS(), "ip", "link", "set", "dev", testbed.TargetIf, "mtu", "9000"}} {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", c, err, out)
			}
		}
		return tb
	}
	// Sent frames: the TC egress program copies past the skb's linear
	// part too (bpf_skb_load_bytes), so -Q out keeps them whole, byte for
	// byte as tcpdump -Q out writes them.
	t.Run("out", func(t *testing.T) {
		t.Parallel()
		requireTools(t, "tshark")
		tb := jumboTestbed(t)
		dir := t.TempDir()
		ours, theirs := filepath.Join(dir, "ours.pcapng"), filepath.Join(dir, "theirs.pcapng")
		tcpdump := startBg(t, "tcpdump", tb.ScanNS(), "tcpdump", "-i", testbed.ScanIf, "-Q", "out", "-s", "0", "-n",
			"--immediate-mode", "-U", "-Z", "root", "-w", theirs, "udp or vlan")
		xdpscan := startBg(t, "xdpscan", tb.ScanNS(), binary, "capture", "-i", testbed.ScanIf, "-Q", "out", "-s", "0",
			"--duration", "30s", "-w", ours, "udp or vlan")
		sendBursts(t, tb, mix)
		time.Sleep(200 * time.Millisecond)
		xdpscan.stop(t)
		tcpdump.stop(t)
		got, want := readCaptureFile(t, ours), readCaptureFile(t, theirs)
		if len(got) != len(mix) || len(want) != len(mix) {
			for _, g := range got {
				t.Logf("ours: %d bytes", len(g.data))
			}
			t.Fatalf("xdpscan wrote %d frames, tcpdump %d, want %d", len(got), len(want), len(mix))
		}
		if onlyOurs, onlyTheirs := sameFrames(got, want); onlyOurs+onlyTheirs != 0 {
			t.Fatalf("%d frames only xdpscan wrote, %d only tcpdump", onlyOurs, onlyTheirs)
		}
		for i := range mix {
			if got[i].data != string(mix[i]) || got[i].dir != 2 {
				t.Fatalf("frame %d: captured %d of %d bytes (direction %d), want all, outbound", i, len(got[i].data), len(mix[i]), got[i].dir)
			}
		}
	})
	for _, mode := range []string{"native", "generic", "auto"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tb := jumboTestbed(t)
			for _, expr := range []string{"", "udp", "greater 9000", "less 8999", "udp[8000:4] == 0x01020304", "vlan 100 and udp"} {
				diffOne(t, tb, mode, expr, mix, "-s", "0")
			}
			// The whole frames, not only tcpdump's agreement: -s 0 kept
			// every byte of the 9014-byte frame.
			dir := t.TempDir()
			file := filepath.Join(dir, "all.pcap")
			st := runCaptureFrames(t, tb, mode, mix, "-s", "0", "-w", file)
			got := readPcapFrames(t, file)
			if st.Written != uint64(len(mix)) || len(got) != len(mix) {
				t.Fatalf("wrote %d frames (file %d), want %d", st.Written, len(got), len(mix))
			}
			for i := range mix {
				if !bytes.Equal(got[i].data, mix[i]) || got[i].length != len(mix[i]) {
					t.Fatalf("frame %d: captured %d of %d bytes, want all %d equal", i, len(got[i].data), got[i].length, len(mix[i]))
				}
			}
		})
	}
}

// runCaptureFrames runs xdpscan capture alone while frames are sent.
func runCaptureFrames(t *testing.T, tb *testbed.Testbed, mode string, frames [][]byte, args ...string) (st struct{ Matched, Written uint64 }) {
	t.Helper()
	stats := filepath.Join(t.TempDir(), "stats.json")
	cmd := exec.Command("ip", append([]string{"netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "--mode", mode,
		"--duration", "30s", "--stats-json", stats}, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "listening on"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("capture never listened:\n%s", stderr.String())
		}
	}
	sendBursts(t, tb, frames)
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// firstUnshared describes the first frame one list holds and the other
// does not.
func firstUnshared(a, b []pcapFrame) string {
	count := map[string]int{}
	for _, f := range b {
		count[string(f.data)]++
	}
	for _, f := range a {
		if count[string(f.data)] == 0 {
			return fmt.Sprintf("xdpscan's (%d bytes) % x", len(f.data), f.data[:min(len(f.data), 64)])
		}
		count[string(f.data)]--
	}
	count = map[string]int{}
	for _, f := range a {
		count[string(f.data)]++
	}
	for _, f := range b {
		if count[string(f.data)] == 0 {
			return fmt.Sprintf("tcpdump's (%d bytes) % x", len(f.data), f.data[:min(len(f.data), 64)])
		}
		count[string(f.data)]--
	}
	return "none"
}

// settle waits until path has kept its size for 150 ms (at most 3 s).
func settle(path string) {
	last, same := int64(-1), 0
	for deadline := time.Now().Add(3 * time.Second); same < 3 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var size int64
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		if size == last {
			same++
		} else {
			last, same = size, 0
		}
	}
}
