package capture

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// TestLossInPcapngStatistics: the statistics block's comment carries the
// loss per stage, read back by gopacket's pcapng reader.
func TestLossInPcapngStatistics(t *testing.T) {
	loss := Loss{NICRxDropped: 3, NICRxMissed: 4, Ring: 5, Writer: 6}
	var file bytes.Buffer
	pw, err := NewPacketWriter(&file, PacketFileOptions{Format: "pcapng", Interface: "xs-tgt", RxMode: "xdp", Snaplen: 128})
	if err != nil {
		t.Fatal(err)
	}
	pw.StatsComment = loss.String()
	if err := pw.Close(100, loss.Ring); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	intf, err := r.Interface(0)
	if err != nil {
		t.Fatal(err)
	}
	want := "lost by stage: NIC/driver 7 (rx_dropped 3, rx_missed_errors 4), ring 5, writer 6"
	if intf.Statistics.Comment != want || intf.Statistics.PacketsDropped != 5 {
		t.Errorf("statistics %+v: want comment %q, 5 dropped", intf.Statistics, want)
	}
}

// TestNICLossOnLoopback: the NIC stage is measured over the capture from
// the interface's counters (lo drops nothing), and an interface that
// cannot be read says so instead of reporting zeros as measured.
func TestNICLossOnLoopback(t *testing.T) {
	tests := []struct {
		iface       string
		unavailable bool
	}{
		{"lo", false},
		{"xs-none0", true},
	}
	for _, tt := range tests {
		t.Run(tt.iface, func(t *testing.T) {
			st := Stats{RingLost: 2, WriterLost: 1}
			startNICLoss(tt.iface).finish(&st)
			if st.Loss.Ring != 2 || st.Loss.Writer != 1 || st.Loss.NICRxDropped != 0 {
				t.Errorf("loss %+v: want ring 2, writer 1, NIC 0", st.Loss)
			}
			if got := st.Loss.NICUnavailable != ""; got != tt.unavailable {
				t.Errorf("NIC unavailable %q: want %v", st.Loss.NICUnavailable, tt.unavailable)
			}
			if tt.unavailable && !strings.Contains(st.Loss.String(), "NIC counters unavailable") {
				t.Errorf("summary %q does not say the NIC counters were unavailable", st.Loss)
			}
		})
	}
}
