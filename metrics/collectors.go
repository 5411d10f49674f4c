package metrics

import (
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// Packet counters of a capture or a monitor, per interface and direction.
var (
	descSeen = desc("packets_seen_total", "Packets the capture program saw, by protocol and, for TCP, flag class "+
		"(protocol: tcp, udp, icmp, icmpv6, other (IP, another protocol), non_ip, malformed; "+
		"tcp_flags: syn, syn_ack, rst, fin, other; empty for other protocols).",
		"interface", "direction", "protocol", "tcp_flags")
	descBytes      = desc("bytes_seen_total", "Bytes of the packets the capture program saw (whole frames).", "interface", "direction")
	descMatched    = desc("packets_matched_total", "Packets the capture filter accepted.", "interface", "direction")
	descWritten    = desc("packets_written_total", "Matched packets written to the output.", "interface", "direction")
	descRingLost   = desc("ring_lost_total", "Packets lost in the kernel-to-user ring: the reservation failed because the reader was behind.", "interface", "direction")
	descWriterLost = desc("writer_lost_total", "Matched packets read from the ring but not written (a write error, or past -c).", "interface", "direction")
	descNICDropped = desc("nic_dropped_total", "Packets the interface (NIC, driver, or the kernel before XDP) dropped on receive, "+
		"from netlink stats64 (counter: rx_dropped, rx_missed_errors), counted since the interface came up.", "interface", "counter")
)

// Capture is what a capture (or the monitor) exposes for one interface and
// direction.
type Capture struct {
	Interface string
	Direction string // "in" (XDP) or "out"
	// Counters reads the program's counters.
	Counters func() (loader.Counters, error)
	// Written and WriterLost are the writer's counts (nil: count-only,
	// nothing is written).
	Written, WriterLost func() uint64
	// Present, if set, says whether the direction is captured at all
	// (known once the capture has set up): no series until it is.
	Present func() bool
}

type captureCollector struct{ caps []Capture }

// NewCaptureCollector reads the captures' counters at each scrape.
func NewCaptureCollector(caps ...Capture) prometheus.Collector { return &captureCollector{caps} }

func (c *captureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSeen, descBytes, descMatched, descWritten, descRingLost, descWriterLost} {
		ch <- d
	}
}

func (c *captureCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cp := range c.caps {
		if cp.Present != nil && !cp.Present() {
			continue
		}
		n, err := cp.Counters()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descSeen, err)
			continue
		}
		l := []string{cp.Interface, cp.Direction}
		counter := func(d *prometheus.Desc, v uint64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append(l[:2:2], extra...)...)
		}
		for _, s := range SeenSeries(n) {
			counter(descSeen, s.Value, s.Protocol, s.TCPFlags)
		}
		counter(descBytes, n.Bytes)
		counter(descMatched, n.Matched)
		counter(descRingLost, n.RingLost)
		if cp.Written != nil {
			counter(descWritten, cp.Written())
			counter(descWriterLost, cp.WriterLost())
		}
	}
}

// Seen is one series of xdpscan_packets_seen_total.
type Seen struct {
	Protocol, TCPFlags string
	Value              uint64
}

// SeenSeries splits Packets by protocol and TCP flag class. They add up to
// n.Packets: a frame is counted once, as a malformed frame (an L2 or an IP
// header error), non-IP, or by its L4 protocol (bpf/include/counters.h's
// count_parse).
//
// The TC program (-Q out) counts packets without parsing them: its packets
// are the series protocol="unparsed", present only when it has any.
func SeenSeries(n loader.Counters) []Seen {
	s := []Seen{
		{"tcp", "syn", n.TCPSyn},
		{"tcp", "syn_ack", n.TCPSynAck},
		{"tcp", "rst", n.TCPRst},
		{"tcp", "fin", n.TCPFin},
		{"tcp", "other", n.TCPOther},
		{"udp", "", n.UDP},
		{"icmp", "", n.ICMP},
		{"icmpv6", "", n.ICMPv6},
		{"other", "", n.OtherL4},
		{"non_ip", "", n.NonIP},
		{"malformed", "", n.ParseErrors},
	}
	var parsed uint64
	for _, x := range s {
		parsed += x.Value
	}
	if n.Packets > parsed {
		s = append(s, Seen{"unparsed", "", n.Packets - parsed})
	}
	return s
}

type nicCollector struct {
	mu    sync.Mutex
	links map[string]*netdev.Link
}

// NewNICCollector reads each interface's stats64 drop counters at each
// scrape (RTM_GETLINK: no privilege needed).
func NewNICCollector(ifaces ...string) (prometheus.Collector, error) {
	c := &nicCollector{links: map[string]*netdev.Link{}}
	for _, name := range ifaces {
		l, err := netdev.Open(name)
		if err != nil {
			return nil, err
		}
		c.links[name] = l
	}
	return c, nil
}

func (c *nicCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descNICDropped }

func (c *nicCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock() // a netlink handle serves one request at a time
	defer c.mu.Unlock()
	for name, l := range c.links {
		n, err := l.Read()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descNICDropped, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descNICDropped, prometheus.CounterValue, float64(n.RxDropped), name, "rx_dropped")
		ch <- prometheus.MustNewConstMetric(descNICDropped, prometheus.CounterValue, float64(n.RxMissedErrors), name, "rx_missed_errors")
	}
}

// The kernel's per-program statistics (kernel.bpf_stats_enabled).
var (
	descStatsEnabled = desc("bpf_stats_enabled", "1 when the sysctl kernel.bpf_stats_enabled is 1: the kernel counts BPF program runs and run time. "+
		"0: xdpscan_bpf_program_runs_total and xdpscan_bpf_program_run_seconds_total stand still, unless a process holds BPF_ENABLE_STATS.")
	descRuns    = desc("bpf_program_runs_total", "Runs of the program, from the kernel's bpf_stats.", "program", "interface")
	descRunTime = desc("bpf_program_run_seconds_total", "Time spent running the program, from the kernel's bpf_stats.", "program", "interface")
)

// Program is one attached BPF program.
type Program struct {
	Name, Interface string
	Program         *ebpf.Program
}

type programCollector struct{ progs []Program }

// NewProgramCollector reports the programs' run counts and run time,
// which the kernel keeps while kernel.bpf_stats_enabled=1 or a process
// holds BPF_ENABLE_STATS, and whether the sysctl is on.
func NewProgramCollector(progs ...Program) prometheus.Collector { return &programCollector{progs} }

func (c *programCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStatsEnabled
	ch <- descRuns
	ch <- descRunTime
}

// StatsEnabled says whether the kernel counts program runs.
func StatsEnabled() bool {
	b, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

func (c *programCollector) Collect(ch chan<- prometheus.Metric) {
	on := StatsEnabled()
	v := 0.0
	if on {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(descStatsEnabled, prometheus.GaugeValue, v)
	// Reported either way: a process holding BPF_ENABLE_STATS (bpftool
	// prog profile, another exporter) turns the counting on without the
	// sysctl, which keeps saying 0.
	for _, p := range c.progs {
		s, err := p.Program.Stats()
		if err != nil {
			continue // closed: the run is over
		}
		ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(s.RunCount), p.Name, p.Interface)
		ch <- prometheus.MustNewConstMetric(descRunTime, prometheus.CounterValue, s.Runtime.Seconds(), p.Name, p.Interface)
	}
}

// StatsNotice is the line printed when the kernel does not count program
// runs, or "".
func StatsNotice() string {
	if StatsEnabled() {
		return ""
	}
	return "kernel.bpf_stats_enabled is 0: xdpscan_bpf_program_runs_total and xdpscan_bpf_program_run_seconds_total stand still " +
		"(sysctl -w kernel.bpf_stats_enabled=1 makes the kernel count them, at a cost of a few ns per program run)"
}

// Scan values, read at each scrape.
var (
	descProbes    = desc("probes_sent_total", "Probes sent.", "interface")
	descReplies   = desc("replies_total", "Pairs reported, by state (open, closed, filtered: by an ICMP error, up: echo reply).", "interface", "state")
	descDups      = desc("duplicates_total", "Replies not reported because their pair already was.", "interface")
	descBadCookie = desc("invalid_cookie_total", "Replies whose cookie did not validate (not ours, or forged).", "interface")
	descTxErrors  = desc("tx_errors_total", "Probes the send path failed to send.", "interface")
	descProgress  = desc("scan_progress_ratio", "Probes sent over probes to send (0 to 1).", "interface")
)

// ScanValues are a scan's figures at one moment.
type ScanValues struct {
	Sent, Total                uint64
	Open, Closed, Filtered, Up uint64
	Duplicates, InvalidCookie  uint64
	TxErrors, RingLost         uint64
}

type scanCollector struct {
	iface string
	read  func() ScanValues
}

// NewScanCollector reads the scan's figures at each scrape.
func NewScanCollector(iface string, read func() ScanValues) prometheus.Collector {
	return &scanCollector{iface, read}
}

func (c *scanCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProbes, descReplies, descDups, descBadCookie, descTxErrors, descRingLost, descProgress} {
		ch <- d
	}
}

func (c *scanCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.read()
	counter := func(d *prometheus.Desc, n uint64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), append([]string{c.iface}, extra...)...)
	}
	counter(descProbes, v.Sent)
	for _, s := range []struct {
		state string
		n     uint64
	}{{"open", v.Open}, {"closed", v.Closed}, {"filtered", v.Filtered}, {"up", v.Up}} {
		counter(descReplies, s.n, s.state)
	}
	counter(descDups, v.Duplicates)
	counter(descBadCookie, v.InvalidCookie)
	counter(descTxErrors, v.TxErrors)
	// The scan's ring is its only direction: replies, inbound.
	ch <- prometheus.MustNewConstMetric(descRingLost, prometheus.CounterValue, float64(v.RingLost), c.iface, "in")
	ratio := 0.0
	if v.Total > 0 {
		ratio = min(1, float64(v.Sent)/float64(v.Total))
	}
	ch <- prometheus.MustNewConstMetric(descProgress, prometheus.GaugeValue, ratio, c.iface)
}
