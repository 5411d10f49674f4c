package netdev

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Verdict is an XDP program's action, as a driver counts it.
type Verdict string

// The verdicts whose packets never reach anything after the XDP program
// (a TC program, a packet socket), and XDP_TX's failures.
const (
	VerdictDrop     Verdict = "drop"      // XDP_DROP (with XDP_ABORTED, in every driver below)
	VerdictTX       Verdict = "tx"        // XDP_TX: sent back out of the interface
	VerdictRedirect Verdict = "redirect"  // XDP_REDIRECT: to another interface, a CPU, an AF_XDP socket
	VerdictTXErrors Verdict = "tx_errors" // XDP_TX frames the driver could not send (not in VerdictTX on veth)
)

// Verdicts are the verdicts reported, in order.
var Verdicts = []Verdict{VerdictDrop, VerdictTX, VerdictRedirect, VerdictTXErrors}

// driverVerdicts are the ethtool -S counters in which a driver counts the
// verdicts of an XDP program it runs itself (native mode). Per verdict, a
// list of choices: the first with any counter present is used, its
// counters summed; "#" stands for a queue number. A verdict the driver
// does not count is absent.
type driverVerdicts struct {
	driver   string
	counters map[Verdict][][]string
	// note says what the counts include, where it matters.
	note string
}

// xdpVerdictTable is what the drivers' sources name their counters
// (Linux 6.x): a driver not listed counts no verdicts that xdpscan knows
// of. Checked on this machine for veth (testbed) and virtio_net (eth0).
var xdpVerdictTable = []driverVerdicts{
	{driver: "veth", // drivers/net/veth.c: veth_rq_stats_desc, "rx_queue_%u_%s"
		counters: map[Verdict][][]string{
			VerdictDrop:     {{"rx_queue_#_xdp_drops"}},
			VerdictTX:       {{"rx_queue_#_xdp_tx"}},
			VerdictRedirect: {{"rx_queue_#_xdp_redirect"}},
			VerdictTXErrors: {{"rx_queue_#_xdp_tx_errors"}},
		},
		// Measured on the testbed (e2e TestCaptureForeignVerdicts): with a
		// peer that has no NAPI, 11 XDP_TX gave xdp_tx 0, xdp_tx_errors 11
		// and stats64 tx_dropped 11; 5 redirects to the interface itself
		// gave xdp_redirect 0, rx_queue_0_drops 5 and rx_dropped 5.
		note: "xdp_drops includes XDP_ABORTED; xdp_tx counts the frames sent back, xdp_tx_errors those that could not be (also in stats64 tx_dropped); " +
			"an XDP_REDIRECT that fails is counted in rx_queue_N_drops (stats64 rx_dropped: the NIC stage), not in xdp_redirect"},
	{driver: "virtio_net", // drivers/net/virtio_net.c: virtnet_rq_stats_desc; totals "rx_%s" and "rx%u_%s" since 6.10, "rx_queue_%u_%s" before
		counters: map[Verdict][][]string{
			VerdictDrop:     {{"rx_xdp_drops"}, {"rx#_xdp_drops"}, {"rx_queue_#_xdp_drops"}},
			VerdictTX:       {{"rx_xdp_tx"}, {"rx#_xdp_tx"}, {"rx_queue_#_xdp_tx"}},
			VerdictRedirect: {{"rx_xdp_redirects"}, {"rx#_xdp_redirects"}, {"rx_queue_#_xdp_redirects"}},
		},
		note: "xdp_drops includes XDP_ABORTED and failed XDP_TX/XDP_REDIRECT"},
	{driver: "mlx5_core", // drivers/net/ethernet/mellanox/mlx5/core/en_stats.c: sw_stats_desc (totals), AF_XDP zero-copy queues apart
		counters: map[Verdict][][]string{
			VerdictDrop:     {{"rx_xdp_drop", "rx_xsk_xdp_drop"}},
			VerdictTX:       {{"rx_xdp_tx_xmit"}},
			VerdictRedirect: {{"rx_xdp_redirect", "rx_xsk_xdp_redirect"}},
			VerdictTXErrors: {{"rx_xdp_tx_err"}},
		},
		note: "rx_xdp_drop includes XDP_ABORTED and failed XDP_TX/XDP_REDIRECT"},
	{driver: "mvneta", // drivers/net/ethernet/marvell/mvneta.c: mvneta_statistics
		counters: map[Verdict][][]string{
			VerdictDrop:     {{"rx_xdp_drop"}},
			VerdictTX:       {{"rx_xdp_tx_xmit"}},
			VerdictRedirect: {{"rx_xdp_redirect"}},
		}},
	// Intel's drivers count no verdicts in ethtool -S.
	{driver: "i40e"}, {driver: "ixgbe"}, {driver: "ice"},
}

// XDPVerdictCounts are the verdict counters found in one reading.
type XDPVerdictCounts struct {
	Driver string
	// Counts has the verdicts the driver counts; a verdict it does not
	// count is absent.
	Counts map[Verdict]uint64
	// Counters are the ethtool -S names summed, per verdict.
	Counters map[Verdict][]string
	Note     string
}

// Source names where the counts come from: "ethtool -S of driver veth
// (rx_queue_0_xdp_drops, ...)".
func (c XDPVerdictCounts) Source() string {
	var names []string
	for _, v := range Verdicts {
		names = append(names, c.Counters[v]...)
	}
	return fmt.Sprintf("ethtool -S of driver %s (%s)", c.Driver, strings.Join(names, ", "))
}

// Sub is the growth of each verdict from b to c; a verdict missing from
// either is missing.
func (c XDPVerdictCounts) Sub(b XDPVerdictCounts) XDPVerdictCounts {
	d := c
	d.Counts = map[Verdict]uint64{}
	for v, n := range c.Counts {
		if m, ok := b.Counts[v]; ok {
			d.Counts[v] = n - m
		}
	}
	return d
}

var queueNumber = regexp.MustCompile(`#`)

func counterPattern(name string) *regexp.Regexp {
	return regexp.MustCompile("^" + queueNumber.ReplaceAllString(regexp.QuoteMeta(name), `[0-9]+`) + "$")
}

// ErrNoVerdictCounters says a driver counts no XDP verdicts.
type ErrNoVerdictCounters struct{ Driver, Why string }

func (e *ErrNoVerdictCounters) Error() string { return e.Why }

// XDPVerdicts finds the verdict counters in a driver's ethtool -S. An
// error says why there are none: the driver is not one xdpscan knows
// counters of, or it has none of the names expected.
func XDPVerdicts(st EthtoolStats) (XDPVerdictCounts, error) {
	var dv *driverVerdicts
	for i := range xdpVerdictTable {
		if xdpVerdictTable[i].driver == st.Driver {
			dv = &xdpVerdictTable[i]
		}
	}
	if dv == nil {
		return XDPVerdictCounts{}, &ErrNoVerdictCounters{st.Driver,
			fmt.Sprintf("driver %s: no XDP verdict counters known to xdpscan in its ethtool -S", st.Driver)}
	}
	if len(dv.counters) == 0 {
		return XDPVerdictCounts{}, &ErrNoVerdictCounters{st.Driver,
			fmt.Sprintf("driver %s counts no XDP verdicts (its ethtool -S has none)", st.Driver)}
	}
	out := XDPVerdictCounts{Driver: st.Driver, Counts: map[Verdict]uint64{}, Counters: map[Verdict][]string{}, Note: dv.note}
	for v, choices := range dv.counters {
		for _, names := range choices {
			pats := make([]*regexp.Regexp, len(names))
			for i, n := range names {
				pats[i] = counterPattern(n)
			}
			var sum uint64
			var found []string
			for i, name := range st.Names {
				for _, p := range pats {
					if p.MatchString(name) {
						sum += st.Values[i]
						found = append(found, name)
						break
					}
				}
			}
			if len(found) > 0 {
				sort.Strings(found)
				out.Counts[v], out.Counters[v] = sum, found
				break
			}
		}
	}
	if len(out.Counts) == 0 {
		return XDPVerdictCounts{}, &ErrNoVerdictCounters{st.Driver,
			fmt.Sprintf("driver %s: none of the XDP verdict counters expected (such as %s) in its ethtool -S", st.Driver, dv.counters[VerdictDrop][0][0])}
	}
	return out, nil
}
