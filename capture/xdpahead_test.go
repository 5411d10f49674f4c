package capture

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/loader"
)

// TestXDPAheadLines: the summary says what the driver counted, names a
// verdict it does not count instead of printing 0 for it, and says why
// when nothing is counted at all.
func TestXDPAheadLines(t *testing.T) {
	n := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name       string
		a          XDPAhead
		line, loss string
	}{
		{"veth native", XDPAhead{Interface: "xs-tgt", ProgramID: 7, ProgramName: "drop7777", XDPMode: "native", Driver: "veth",
			Source: "ethtool -S of driver veth (rx_queue_0_xdp_drops)", Drop: n(37), TX: n(0), Redirect: n(2), TXErrors: n(0)},
			"37 packets dropped by the XDP program ahead (id 7 drop7777) on xs-tgt (xdp_drop), 0 sent back (xdp_tx), 2 redirected (xdp_redirect), 0 could not be sent back (xdp_tx_errors)",
			"not seen, kept by the XDP program ahead (id 7 drop7777) on xs-tgt (native mode): drop 37, tx 0, redirect 2, from ethtool -S of driver veth (rx_queue_0_xdp_drops)"},
		{"a verdict not counted", XDPAhead{Interface: "eth1", ProgramID: 9, XDPMode: "native", Driver: "virtio_net", Drop: n(5), Redirect: n(1)},
			"5 packets dropped by the XDP program ahead (id 9) on eth1 (xdp_drop), sent back: not counted by driver virtio_net (xdp_tx), 1 redirected (xdp_redirect)",
			"drop 5, tx not counted, redirect 1"},
		{"generic", XDPAhead{Interface: "xs-tgt", ProgramID: 7, XDPMode: "generic", Driver: "veth", NotCounted: genericNotCounted},
			"packets dropped, sent back or redirected by the XDP program ahead (id 7) on xs-tgt: not counted (the program runs in generic (skb) mode",
			"(generic mode): unknown, the program runs in generic (skb) mode"},
		{"attached after the capture began, then replaced twice", XDPAhead{Interface: "xs-scan", ProgramID: 40, ProgramName: "xdpscan_scan", XDPMode: "generic",
			NotCounted: "it was attached after the capture began", Later: []XDPProgram{{ID: 44, Name: "xdpscan_scan"}, {ID: 47}}},
			"packets dropped, sent back or redirected by the XDP program ahead (id 40 xdpscan_scan, then id 44 xdpscan_scan, then id 47) on xs-scan: not counted",
			"not seen, kept by the XDP program ahead (id 40 xdpscan_scan, then id 44 xdpscan_scan, then id 47) on xs-scan (generic mode): unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Line(); !strings.HasPrefix(got, tt.line) {
				t.Errorf("line\n%s\nwant it to start with\n%s", got, tt.line)
			}
			if got := (Loss{XDPAhead: []XDPAhead{tt.a}}).String(); !strings.Contains(got, tt.loss) {
				t.Errorf("loss %q, want it to contain %q", got, tt.loss)
			}
			if !tt.a.Counted() && strings.Contains(tt.a.Line(), " 0 ") {
				t.Errorf("line %q prints a 0 for what is not counted", tt.a.Line())
			}
		})
	}
}

// TestXDPAheadMeterModes: generic mode and an interface whose driver has
// no ethtool statistics (lo) give no counts, each with its reason.
func TestXDPAheadMeterModes(t *testing.T) {
	tests := []struct {
		name string
		mode loader.Mode
		want string
	}{
		{"generic", loader.ModeGeneric, "generic (skb) mode"},
		{"native on lo", loader.ModeNative, "ethtool stats of lo: ETHTOOL_GDRVINFO"},
		{"offload", "offload", "offloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startXDPAhead("lo", tt.mode).read()
			if a.Counted() || !strings.Contains(a.NotCounted, tt.want) || a.XDPMode != string(tt.mode) {
				t.Fatalf("%+v: want no counts, the reason containing %q", a, tt.want)
			}
		})
	}
}

// TestXDPAheadInInterfaceStatistics: in a file of several interfaces each
// statistics block says what the XDP program ahead did there (the first's
// carries the loss line, which names them all), read back by gopacket's
// pcapng reader, with the counts in place.
func TestXDPAheadInInterfaceStatistics(t *testing.T) {
	drop := uint64(21)
	native := XDPAhead{Interface: "xs-tgt", ProgramID: 7, XDPMode: "native", Driver: "veth", Source: "ethtool -S of driver veth (rx_queue_0_xdp_drops)",
		Drop: &drop, TX: new(uint64), Redirect: new(uint64)}
	generic := XDPAhead{Interface: "lo", ProgramID: 8, XDPMode: "generic", NotCounted: genericNotCounted}
	stats := []InterfaceStats{{Name: "xs-tgt", Seen: 4, RingLost: 1, XDPAhead: &native}, {Name: "lo", Seen: 3, XDPAhead: &generic}, {Name: "xs-b", Seen: 2}}
	var file bytes.Buffer
	pw, err := NewPacketWriter(&file, PacketFileOptions{Format: "pcapng", Interface: "xs-tgt", Snaplen: 128,
		More: []MoreInterface{{Name: "lo"}, {Name: "xs-b"}}})
	if err != nil {
		t.Fatal(err)
	}
	pw.StatsComment = Loss{XDPAhead: []XDPAhead{native, generic}}.String()
	if err := pw.CloseInterfaces(stats); err != nil {
		t.Fatal(err)
	}
	got := map[int]pcapgo.NgInterfaceStatistics{}
	r, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.NgReaderOptions{StatisticsCallback: func(i int, s pcapgo.NgInterfaceStatistics) { got[i] = s }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	tests := []struct {
		name          string
		i             int
		want          string
		recv, dropped uint64
	}{
		{"first: the loss line", 0, "ring 0, writer 0; not seen, kept by the XDP program ahead (id 7) on xs-tgt (native mode): drop 21, tx 0, redirect 0", 4, 1},
		{"second: generic, unknown", 1, "kept by the XDP program ahead (id 8) on lo (generic mode): unknown, the program runs in generic (skb) mode", 3, 0},
		{"third: nothing ahead", 2, "", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := got[tt.i]
			if !ok || !strings.Contains(s.Comment, tt.want) || (tt.want == "") != (s.Comment == "") || s.PacketsReceived != tt.recv || s.PacketsDropped != tt.dropped {
				t.Fatalf("interface %d statistics %+v (present %v): want comment containing %q, %d received, %d dropped", tt.i, s, ok, tt.want, tt.recv, tt.dropped)
			}
		})
	}
}
