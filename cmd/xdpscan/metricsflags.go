package main

import (
	"fmt"
	flag "github.com/spf13/pflag"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/metrics"
	"github.com/xdpscan/xdpscan/scan"
)

// metricsOpts is --metrics-addr.
type metricsOpts struct {
	addr string
	srv  *metrics.Server
}

// addMetricsFlags adds --metrics-addr to scan, capture and monitor.
func addMetricsFlags(fs *flag.FlagSet, o *metricsOpts) {
	fs.StringVar(&o.addr, "metrics-addr", "", "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9477; default: no server).\n"+
		"Bound at start, answered once setup is over and privileges are dropped; read from the kernel's\n"+
		"counters at each scrape (no per-packet work)")
	setGroup(fs, "Output", "metrics-addr")
	setMetavar(fs, "HOST:PORT", "metrics-addr")
}

// listen binds --metrics-addr, before setup: a taken port fails the
// command before anything is attached.
func (o *metricsOpts) listen(cmd string) error {
	if o.addr == "" {
		return nil
	}
	srv, err := metrics.Listen(o.addr)
	if err != nil {
		return usageError("%s: %v", cmd, err)
	}
	o.srv = srv
	return nil
}

// serve registers the collectors and starts answering: call it after the
// privileges are dropped.
func (o *metricsOpts) serve(cs ...prometheus.Collector) {
	if o.srv == nil {
		return
	}
	for _, c := range cs {
		o.srv.Registry.MustRegister(c)
	}
	if n := metrics.StatsNotice(); n != "" {
		fmt.Fprintf(os.Stderr, "xdpscan: notice: %s\n", n)
	}
	fmt.Fprintf(os.Stderr, "xdpscan: metrics at http://%s/metrics\n", o.srv.Addr())
	o.srv.Serve()
}

func (o *metricsOpts) close() {
	if o.srv != nil {
		o.srv.Close()
	}
}

// lastGood keeps the last counters read: once a run ends its maps are
// closed, and a scrape between then and the final figures must not see
// zeros.
type lastGood struct {
	mu    sync.Mutex
	c     loader.Counters
	final atomic.Pointer[loader.Counters]
}

func (l *lastGood) read(read func() (loader.Counters, error)) (loader.Counters, error) {
	if f := l.final.Load(); f != nil {
		return *f, nil
	}
	c, err := read()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		return l.c, nil
	}
	l.c = c
	return c, nil
}

// captureMetrics are a capture's collectors.
type captureMetrics struct {
	good      lastGood // inbound (or both, with one program for both)
	goodOut   lastGood
	final     atomic.Pointer[capture.Stats]
	progress  *capture.Progress
	iface     string
	countOnly bool
}

func (m *captureMetrics) collectors() []prometheus.Collector {
	// Each direction its own series (-Q inout: the XDP program and the TC
	// egress program count apart); a capture with one program for both
	// (libpcap) is all "in".
	dirCounters := func(outbound bool) func() (loader.Counters, error) {
		return func() (loader.Counters, error) {
			c, ok, err := m.progress.ReadDirection(outbound)
			if !ok && !outbound {
				return m.progress.ReadCounters()
			}
			return c, err
		}
	}
	in := metrics.Capture{Interface: m.iface, Direction: "in",
		Counters: func() (loader.Counters, error) { return m.good.read(dirCounters(false)) }}
	out := metrics.Capture{Interface: m.iface, Direction: "out",
		Counters: func() (loader.Counters, error) { return m.goodOut.read(dirCounters(true)) },
		Present: func() bool {
			if f := m.final.Load(); f != nil {
				return f.Outbound != nil
			}
			_, ok, _ := m.progress.ReadDirection(true)
			return ok
		}}
	if !m.countOnly {
		in.Written = func() uint64 {
			if f := m.final.Load(); f != nil {
				if f.Inbound != nil && f.Outbound != nil {
					return f.Inbound.Written
				}
				return f.Written
			}
			return m.progress.Written.Load() - m.progress.WrittenOut.Load()
		}
		out.Written = func() uint64 {
			if f := m.final.Load(); f != nil && f.Outbound != nil {
				return f.Outbound.Written
			}
			return m.progress.WrittenOut.Load()
		}
		in.WriterLost = func() uint64 {
			if f := m.final.Load(); f != nil {
				return f.WriterLost
			}
			return m.progress.WriterLost.Load()
		}
		// The writer's losses are not told apart by direction: all on "in".
		out.WriterLost = func() uint64 { return 0 }
	}
	cs := []prometheus.Collector{metrics.NewCaptureCollector(in, out)}
	if nic, err := metrics.NewNICCollector(m.iface); err == nil {
		cs = append(cs, nic)
	} else {
		fmt.Fprintf(os.Stderr, "xdpscan: notice: no xdpscan_nic_dropped_total: %v\n", err)
	}
	if p := m.progress.Program(); p != nil {
		cs = append(cs, metrics.NewProgramCollector(metrics.Program{Name: "xdpscan_capture", Interface: m.iface, Program: p}))
	}
	cs = append(cs, metrics.NewForeignXDPCollector(m.foreignXDP))
	return cs
}

// foreignXDP is what the XDP program ahead of the capture did, live or,
// once the capture is over, its final figures.
func (m *captureMetrics) foreignXDP() []metrics.ForeignXDP {
	var ahead []capture.XDPAhead
	if f := m.final.Load(); f != nil {
		ahead = f.Loss.XDPAhead
	} else {
		ahead = m.progress.XDPAhead()
	}
	var out []metrics.ForeignXDP
	for _, a := range ahead {
		out = append(out, metrics.ForeignXDP{Interface: a.Interface, XDPMode: a.XDPMode, Driver: a.Driver,
			Drop: a.Drop, TX: a.TX, Redirect: a.Redirect, TXErrors: a.TXErrors})
	}
	return out
}

// done publishes the capture's final figures.
func (m *captureMetrics) done(st capture.Stats) {
	// With two programs st.Counters is their sum: each direction keeps
	// its last reading instead.
	if st.Outbound == nil {
		c := st.Counters
		m.good.final.Store(&c)
	}
	m.final.Store(&st)
}

// scanMetrics are a scan's collectors.
type scanMetrics struct {
	good     lastGood
	final    atomic.Pointer[scan.Stats]
	progress *scan.Progress
	iface    string
}

func (m *scanMetrics) values() metrics.ScanValues {
	if st := m.final.Load(); st != nil {
		return metrics.ScanValues{Sent: st.ProbesSent, Total: st.ProbesTotal, Open: st.Open, Closed: st.Closed,
			Filtered: st.FilteredICMP, Up: st.Up, Duplicates: st.Duplicates, InvalidCookie: st.InvalidCookie,
			TxErrors: st.TxErrors, RingLost: st.RingLost}
	}
	p := m.progress
	c, _ := m.good.read(p.ReadCounters)
	return metrics.ScanValues{Sent: p.Sent.Load(), Total: p.Total.Load(), Open: p.Open.Load(), Closed: p.Closed.Load(),
		Filtered: p.Filtered.Load(), Up: p.Up.Load(), Duplicates: c.Duplicates, InvalidCookie: c.BadCookie,
		TxErrors: p.TxErrors.Load(), RingLost: c.RingLost}
}

func (m *scanMetrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{metrics.NewScanCollector(m.iface, m.values)}
	if p := m.progress.Program(); p != nil {
		cs = append(cs, metrics.NewProgramCollector(metrics.Program{Name: "xdpscan_scan", Interface: m.iface, Program: p}))
	}
	return cs
}

func (m *scanMetrics) done(st scan.Stats) { m.final.Store(&st) }

// ifaceList is monitor's -i: several interfaces, repeated (-i A -i B) or
// comma-separated (-i A,B).
type ifaceList []string

func (l *ifaceList) String() string { return strings.Join(*l, ",") }
func (l *ifaceList) Type() string   { return "IFACE[,IFACE...]" } // pflag.Value

func (l *ifaceList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return fmt.Errorf("empty interface name in %q", v)
		}
		if slices.Contains(*l, name) {
			return fmt.Errorf("interface %s given twice", name)
		}
		*l = append(*l, name)
	}
	return nil
}

// monitorMetrics are the monitor's collectors: one program per interface,
// count-only.
func monitorMetrics(progs []*loader.Scan, ifaces []string) []prometheus.Collector {
	var caps []metrics.Capture
	var ps []metrics.Program
	for i, p := range progs {
		caps = append(caps, metrics.Capture{Interface: ifaces[i], Direction: "in", Counters: p.Counters})
		ps = append(ps, metrics.Program{Name: "xdpscan_scan", Interface: ifaces[i], Program: p.Program()})
	}
	cs := []prometheus.Collector{metrics.NewCaptureCollector(caps...), metrics.NewProgramCollector(ps...)}
	if nic, err := metrics.NewNICCollector(ifaces...); err == nil {
		cs = append(cs, nic)
	} else {
		fmt.Fprintf(os.Stderr, "xdpscan: notice: no xdpscan_nic_dropped_total: %v\n", err)
	}
	return cs
}
