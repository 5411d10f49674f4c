package loader_test

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

const xdpTX = 3

func loadResponder(t testing.TB) *loader.Responder {
	t.Helper()
	bpftest.Require(t)
	r, err := loader.LoadResponder(loader.ResponderConfig{Range: netip.MustParsePrefix("198.18.0.0/16"),
		OpenPorts: []uint16{22, 80}, FilteredFrom: 240})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestResponderAnswersByTheRule runs SYNs through the responder and checks
// the frames it sends back, checksums included, with gopacket.
func TestResponderAnswersByTheRule(t *testing.T) {
	r := loadResponder(t)
	syn := func(dst string, port uint16, opts ...layers.TCPOption) testpkt.Frame {
		tcp := testpkt.TCP(40001, port, 1000, 0, "S")
		tcp.Options = opts
		return testpkt.Frame{Src: scanner4, Dst: netip.MustParseAddr(dst), L4: tcp, Payload: nil}
	}
	mss := layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}
	tests := []struct {
		name    string
		frame   testpkt.Frame
		verdict uint32
		flags   string // reply flags when XDP_TX
	}{
		// 198.19.0.1.40001 > 198.18.0.7.80: Flags [S], seq 1000
		{"open port answers SYN-ACK", syn("198.18.0.7", 80), xdpTX, "SA"},
		// 198.19.0.1.40001 > 198.18.0.7.81: Flags [S], seq 1000
		{"closed port answers RST-ACK", syn("198.18.0.7", 81), xdpTX, "RA"},
		// 198.19.0.1.40001 > 198.18.0.7.22: Flags [S], seq 1000, options [mss 1460]
		{"options are cut from the reply", syn("198.18.0.7", 22, mss), xdpTX, "SA"},
		// 198.19.0.1.40001 > 198.18.0.250.80: Flags [S]
		{"filtered address is silent", syn("198.18.0.250", 80), xdpDrop, ""},
		// 198.19.0.1.40001 > 198.20.0.7.80: Flags [S]
		{"outside the range passes", syn("198.20.0.7", 80), xdpPass, ""},
		// 198.19.0.1.40001 > 198.18.0.7.80: Flags [.]
		{"not a SYN passes", testpkt.Frame{Src: scanner4, Dst: netip.MustParseAddr("198.18.0.7"), L4: testpkt.TCP(40001, 80, 1, 1, "A")}, xdpPass, ""},
		// 198.19.0.1.40001 > 198.18.0.7.80: Flags [R], seq 1
		{"the scanner's RST ends here", testpkt.Frame{Src: scanner4, Dst: netip.MustParseAddr("198.18.0.7"), L4: testpkt.TCP(40001, 80, 1, 0, "R")}, xdpDrop, ""},
		// 198.19.0.1.40001 > 198.20.0.7.80: Flags [R], seq 1
		{"a RST outside the range passes", testpkt.Frame{Src: scanner4, Dst: netip.MustParseAddr("198.20.0.7"), L4: testpkt.TCP(40001, 80, 1, 0, "R")}, xdpPass, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := testpkt.Build(tc.frame)
			out := make([]byte, len(in)+64)
			opts := &ebpf.RunOptions{Data: in, DataOut: out}
			verdict, err := r.Program().Run(opts)
			if err != nil {
				t.Fatal(err)
			}
			if verdict != tc.verdict {
				t.Fatalf("verdict %d, want %d", verdict, tc.verdict)
			}
			if tc.flags == "" {
				return
			}
			reply := opts.DataOut
			if len(reply) != 54 {
				t.Fatalf("reply is %d bytes, want 54", len(reply))
			}
			p := gopacket.NewPacket(reply, layers.LayerTypeEthernet, gopacket.Default)
			ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if ip.SrcIP.String() != tc.frame.Dst.String() || ip.DstIP.String() != scanner4.String() ||
				tcp.SrcPort != tc.frame.L4.(*layers.TCP).DstPort || tcp.DstPort != 40001 || tcp.Ack != 1001 {
				t.Fatalf("reply %v %v: addresses, ports or ack wrong", ip, tcp)
			}
			if got := map[bool]string{true: "SA", false: "RA"}[tcp.SYN]; got != tc.flags || !tcp.ACK || tcp.SYN == tcp.RST {
				t.Fatalf("reply flags SYN=%v RST=%v ACK=%v, want %s", tcp.SYN, tcp.RST, tcp.ACK, tc.flags)
			}
			if ok, err := testpkt.ChecksumsMatch(reply); !ok || err != nil {
				t.Fatalf("checksums wrong in % x (%v)", reply, err)
			}
		})
	}
}
