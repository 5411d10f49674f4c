package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestForeignXDPExposition: a verdict the driver counts is a series, one
// it does not count is none (never a 0), and the gauge says which
// interfaces have counts at all.
func TestForeignXDPExposition(t *testing.T) {
	n := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name string
		in   []ForeignXDP
		want string
	}{
		{"veth native", []ForeignXDP{{Interface: "xs-tgt", XDPMode: "native", Driver: "veth", Drop: n(37), TX: n(0), Redirect: n(2), TXErrors: n(0)}}, `
# HELP xdpscan_foreign_xdp_verdicts_counted 1 when the driver counts the verdicts of the XDP program attached before the capture; 0 when nothing does (generic mode, a driver without such counters): what it drops is then unknown.
# TYPE xdpscan_foreign_xdp_verdicts_counted gauge
xdpscan_foreign_xdp_verdicts_counted{driver="veth",interface="xs-tgt",xdp_mode="native"} 1
`},
		{"generic", []ForeignXDP{{Interface: "xs-tgt", XDPMode: "generic", Driver: "veth"}}, `
# HELP xdpscan_foreign_xdp_verdicts_counted 1 when the driver counts the verdicts of the XDP program attached before the capture; 0 when nothing does (generic mode, a driver without such counters): what it drops is then unknown.
# TYPE xdpscan_foreign_xdp_verdicts_counted gauge
xdpscan_foreign_xdp_verdicts_counted{driver="veth",interface="xs-tgt",xdp_mode="generic"} 0
`},
		{"nothing ahead", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewForeignXDPCollector(func() []ForeignXDP { return tt.in })
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want), "xdpscan_foreign_xdp_verdicts_counted"); err != nil {
				t.Error(err)
			}
			var wantSeries int
			for _, f := range tt.in {
				for _, p := range []*uint64{f.Drop, f.TX, f.Redirect, f.TXErrors} {
					if p != nil {
						wantSeries++
					}
				}
			}
			if got := testutil.CollectAndCount(c, "xdpscan_foreign_xdp_packets_total"); got != wantSeries {
				t.Errorf("%d packet series, want %d", got, wantSeries)
			}
			if len(tt.in) > 0 && tt.in[0].Drop != nil {
				if got := testutil.ToFloat64(withLabel(onlyDesc(c, "foreign_xdp_packets_total"), "verdict", "drop")); got != 37 {
					t.Errorf("drop %v, want 37", got)
				}
			}
			if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %v", err, problems)
			}
		})
	}
}
