package netdev

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

// stats builds an ethtool -S reading from name/value pairs.
func stats(driver string, kv ...any) EthtoolStats {
	st := EthtoolStats{Driver: driver}
	for i := 0; i+1 < len(kv); i += 2 {
		st.Names = append(st.Names, kv[i].(string))
		st.Values = append(st.Values, uint64(kv[i+1].(int)))
	}
	return st
}

// TestXDPVerdicts: each driver's counters are found by their names (as
// the drivers' sources and this machine's ethtool -S give them), summed
// over queues, never mixed with look-alike counters (xdp_tx_errors is
// not xdp_tx, tx0_xdp_tx is a send queue's); a driver that counts none
// says why.
func TestXDPVerdicts(t *testing.T) {
	type m = map[Verdict]uint64
	tests := []struct {
		name    string
		in      EthtoolStats
		want    m
		source  string // a part of Source()
		noCount string // a part of the error, when no counts
	}{
		{"veth two queues (this machine's names)", stats("veth", "peer_ifindex", 2,
			"rx_queue_0_xdp_packets", 15, "rx_queue_0_xdp_bytes", 690, "rx_queue_0_drops", 1, "rx_queue_0_xdp_redirect", 3,
			"rx_queue_0_xdp_drops", 10, "rx_queue_0_xdp_tx", 4, "rx_queue_0_xdp_tx_errors", 1,
			"rx_queue_1_xdp_packets", 5, "rx_queue_1_xdp_bytes", 300, "rx_queue_1_drops", 0, "rx_queue_1_xdp_redirect", 0,
			"rx_queue_1_xdp_drops", 2, "rx_queue_1_xdp_tx", 0, "rx_queue_1_xdp_tx_errors", 0,
			"tx_queue_0_xdp_xmit", 7, "tx_queue_0_xdp_xmit_errors", 8),
			m{VerdictDrop: 12, VerdictTX: 4, VerdictRedirect: 3, VerdictTXErrors: 1},
			"ethtool -S of driver veth (rx_queue_0_xdp_drops, rx_queue_1_xdp_drops, rx_queue_0_xdp_tx,", ""},
		{"virtio_net since 6.10: totals, not added to the queues'", stats("virtio_net",
			"rx_drops", 0, "rx_xdp_packets", 9, "rx_xdp_tx", 2, "rx_xdp_redirects", 3, "rx_xdp_drops", 4, "tx_xdp_tx", 50, "tx_xdp_tx_drops", 60,
			"rx0_xdp_packets", 9, "rx0_xdp_tx", 2, "rx0_xdp_redirects", 3, "rx0_xdp_drops", 4, "tx0_xdp_tx", 50, "tx0_xdp_tx_drops", 60),
			m{VerdictDrop: 4, VerdictTX: 2, VerdictRedirect: 3}, "(rx_xdp_drops, rx_xdp_tx, rx_xdp_redirects)", ""},
		{"virtio_net per queue only", stats("virtio_net", "rx0_xdp_drops", 4, "rx1_xdp_drops", 5, "rx0_xdp_tx", 1, "rx1_xdp_tx", 1,
			"rx0_xdp_redirects", 0, "rx1_xdp_redirects", 7, "tx0_xdp_tx", 99),
			m{VerdictDrop: 9, VerdictTX: 2, VerdictRedirect: 7}, "rx0_xdp_drops, rx1_xdp_drops", ""},
		{"virtio_net before 6.10", stats("virtio_net", "rx_queue_0_packets", 100, "rx_queue_0_xdp_drops", 6, "rx_queue_0_xdp_tx", 1,
			"rx_queue_0_xdp_redirects", 2, "tx_queue_0_xdp_tx", 99),
			m{VerdictDrop: 6, VerdictTX: 1, VerdictRedirect: 2}, "rx_queue_0_xdp_drops", ""},
		{"mlx5: totals with AF_XDP zero-copy queues, not the per-channel copies", stats("mlx5_core",
			"rx_xdp_drop", 10, "rx_xdp_redirect", 20, "rx_xdp_tx_xmit", 30, "rx_xdp_tx_mpwqe", 1, "rx_xdp_tx_full", 2, "rx_xdp_tx_err", 3,
			"rx_xsk_xdp_drop", 1, "rx_xsk_xdp_redirect", 2, "rx0_xdp_drop", 10, "rx0_xdp_redirect", 20, "tx_xdp_xmit", 40),
			m{VerdictDrop: 11, VerdictTX: 30, VerdictRedirect: 22, VerdictTXErrors: 3}, "rx_xdp_drop, rx_xsk_xdp_drop", ""},
		{"mlx5 before AF_XDP counters", stats("mlx5_core", "rx_xdp_drop", 10, "rx_xdp_redirect", 20, "rx_xdp_tx_xmit", 30, "rx_xdp_tx_err", 0),
			m{VerdictDrop: 10, VerdictTX: 30, VerdictRedirect: 20, VerdictTXErrors: 0}, "(rx_xdp_drop, rx_xdp_tx_xmit, rx_xdp_redirect, rx_xdp_tx_err)", ""},
		{"i40e counts none", stats("i40e", "rx_packets", 5, "rx_dropped", 1), nil, "", "driver i40e counts no XDP verdicts"},
		{"unknown driver", stats("e1000", "rx_packets", 5), nil, "", "driver e1000: no XDP verdict counters known to xdpscan"},
		{"known driver without the names", stats("veth", "peer_ifindex", 2), nil, "",
			"driver veth: none of the XDP verdict counters expected (such as rx_queue_#_xdp_drops)"},
		{"no private counters at all", stats("bridge"), nil, "", "driver bridge: no XDP verdict counters known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := XDPVerdicts(tt.in)
			if tt.noCount != "" {
				var nc *ErrNoVerdictCounters
				if !errors.As(err, &nc) || !strings.Contains(err.Error(), tt.noCount) || nc.Driver != tt.in.Driver {
					t.Fatalf("error %v, want one saying %q", err, tt.noCount)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Counts, tt.want) {
				t.Errorf("counts %v, want %v", got.Counts, tt.want)
			}
			if !strings.Contains(got.Source(), tt.source) {
				t.Errorf("source %q, want it to contain %q", got.Source(), tt.source)
			}
		})
	}
}

// TestXDPVerdictsSub: deltas over a capture, for the verdicts counted at
// both ends only.
func TestXDPVerdictsSub(t *testing.T) {
	before := XDPVerdictCounts{Driver: "veth", Counts: map[Verdict]uint64{VerdictDrop: 5, VerdictTX: 1}}
	after := XDPVerdictCounts{Driver: "veth", Counts: map[Verdict]uint64{VerdictDrop: 55, VerdictTX: 1, VerdictRedirect: 4}}
	d := after.Sub(before)
	if want := (map[Verdict]uint64{VerdictDrop: 50, VerdictTX: 0}); !maps.Equal(d.Counts, want) {
		t.Fatalf("delta %v, want %v", d.Counts, want)
	}
}

// TestEthtoolStatsErrors: an interface without ethtool support, or none
// at all, is an error naming it and the request.
func TestEthtoolStatsErrors(t *testing.T) {
	tests := []struct{ iface, want string }{
		{"lo", "ethtool stats of lo: ETHTOOL_GDRVINFO"},
		{"xs-none0", "ethtool stats of xs-none0: ETHTOOL_GDRVINFO"},
	}
	for _, tt := range tests {
		t.Run(tt.iface, func(t *testing.T) {
			if _, err := ReadEthtoolStats(tt.iface); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
