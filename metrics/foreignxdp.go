package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The verdicts of an XDP program attached before the capture (someone
// else's): packets a capture after it never sees.
var (
	descForeignPackets = desc("foreign_xdp_packets_total", "Packets the XDP program attached before the capture (someone else's; "+
		"the capture runs after it, at TC ingress) gave a verdict that keeps them from the capture, since the capture began, "+
		"from the driver's ethtool -S counters (native mode only; verdict: drop (with aborted), tx, redirect, tx_error: XDP_TX frames not sent). "+
		"Absent where the driver does not count the verdict: see xdpscan_foreign_xdp_verdicts_counted.",
		"interface", "verdict")
	descForeignCounted = desc("foreign_xdp_verdicts_counted", "1 when the driver counts the verdicts of the XDP program attached before the capture; "+
		"0 when nothing does (generic mode, a driver without such counters): what it drops is then unknown.",
		"interface", "xdp_mode", "driver")
)

// ForeignXDP is one interface's reading.
type ForeignXDP struct {
	Interface, XDPMode, Driver   string
	Drop, TX, Redirect, TXErrors *uint64 // nil: not counted
}

type foreignXDPCollector struct{ read func() []ForeignXDP }

// NewForeignXDPCollector reports what read returns at each scrape (one
// ethtool ioctl per interface).
func NewForeignXDPCollector(read func() []ForeignXDP) prometheus.Collector {
	return &foreignXDPCollector{read}
}

func (c *foreignXDPCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descForeignPackets
	ch <- descForeignCounted
}

func (c *foreignXDPCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.read() {
		counted := 0.0
		for _, v := range []struct {
			verdict string
			n       *uint64
		}{{"drop", f.Drop}, {"tx", f.TX}, {"redirect", f.Redirect}, {"tx_error", f.TXErrors}} {
			if v.n != nil {
				counted = 1
				ch <- prometheus.MustNewConstMetric(descForeignPackets, prometheus.CounterValue, float64(*v.n), f.Interface, v.verdict)
			}
		}
		ch <- prometheus.MustNewConstMetric(descForeignCounted, prometheus.GaugeValue, counted, f.Interface, f.XDPMode, f.Driver)
	}
}
