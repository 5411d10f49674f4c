package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/testbed"
)

// ScanOptions configures `xdpscan bench scan`.
type ScanOptions struct {
	Self   string         // the xdpscan binary the tools' runs use
	Runs   int            // interleaved rounds; figures are medians over them
	Probes uint64         // at least this many probes per scan (range × ports)
	Target testbed.Target // kernel (a real TCP stack) or xdp (the responder)
	Tools  []string
	Rates  []float64 // probes per second; 0 is each tool's maximum
	Memory bool      // also compare xdpscan's peak RSS on a small and a huge scan
	// Split puts every tool on CPU 0 and the testbed's receive softirqs
	// (target and replies) on CPU 1, through RPS on both veth ends, so a
	// tool's CPU seconds are its own work, not the target's TCP stack's.
	// Needs two CPUs.
	Split bool
	Wait  time.Duration
	// Name is the testbed's name (testbed up --name); "" is bench<pid>.
	Name string
	Dir  string    // scratch space for the tools' outputs
	Log  io.Writer // progress, one line per run
}

// ScanRun is one tool's run at one rate: every raw figure.
type ScanRun struct {
	Tool          string  `json:"tool"`
	Round         int     `json:"round"`
	RateAsked     float64 `json:"rate_asked"` // 0: the tool's maximum
	ProbesSent    uint64  `json:"probes_sent"`
	SendPPS       float64 `json:"send_pps"` // probes / the window the link saw them in
	TruthOpen     int     `json:"truth_open"`
	Found         int     `json:"found"` // distinct true open (address, port) reported
	FalsePos      int     `json:"false_positives"`
	Duplicates    int     `json:"duplicates"`
	Usage         Usage   `json:"usage"`
	CPUPerMillion float64 `json:"cpu_s_per_million_probes"`
	// RelayCPUS is xdpscan-xdptx's relay kernel thread's CPU seconds
	// (split runs): the transmit and the target's whole receive path,
	// not part of Usage.
	RelayCPUS    float64   `json:"relay_kthread_cpu_s,omitempty"`
	ScanLink     LinkStats `json:"scan_link"`   // the scanner's veth end, deltas
	TargetLink   LinkStats `json:"target_link"` // the target's veth end, deltas
	SoftnetDrops uint64    `json:"softnet_drops"`
	NftDrops     uint64    `json:"nft_filtered_drops"` // the target's filtered slice (expected)
	ScannerRSTs  uint64    `json:"scanner_kernel_rsts"`
	Error        string    `json:"error,omitempty"`
}

// FoundPct is the share of the truth found.
func (r ScanRun) FoundPct() float64 {
	if r.TruthOpen == 0 {
		return 0
	}
	return 100 * float64(r.Found) / float64(r.TruthOpen)
}

// MemoryCheck is xdpscan's peak RSS on a small and a huge scan.
type MemoryCheck struct {
	Small       string  `json:"small"`
	SmallProbes uint64  `json:"small_probes"`
	SmallRSSMB  float64 `json:"small_peak_rss_mb"`
	Large       string  `json:"large"`
	LargeProbes uint64  `json:"large_probes"`
	LargeRSSMB  float64 `json:"large_peak_rss_mb"`
	LargePPS    float64 `json:"large_send_pps"`
}

// ScanResults is everything `bench scan` measured.
type ScanResults struct {
	Target  testbed.Target    `json:"target"`
	Prefix  string            `json:"prefix"`
	Ports   []uint16          `json:"ports"`
	Probes  uint64            `json:"probes"`
	Pinning string            `json:"pinning"`
	Skipped map[string]string `json:"skipped,omitempty"`
	Runs    []ScanRun         `json:"runs"`
	Memory  *MemoryCheck      `json:"memory,omitempty"`
}

// scanPorts are the testbed's open ports: every probe has a known answer.
var scanPorts = []uint16{22, 80, 443, 8080}

// scanPrefix is the smallest prefix of the testbed range that gives at
// least probes probes over ports (at least a /24, at most the /16).
func scanPrefix(rangePrefix netip.Prefix, probes uint64, ports int) netip.Prefix {
	addrs := max((probes+uint64(ports)-1)/uint64(ports), 256)
	hostBits := bits.Len64(addrs - 1)
	b := max(32-hostBits, rangePrefix.Bits())
	return netip.PrefixFrom(rangePrefix.Addr(), b).Masked()
}

// RunScan brings a testbed up, runs every tool at every rate, round after
// round (A B C A B C), and takes the testbed down.
func RunScan(ctx context.Context, o ScanOptions) (*ScanResults, error) {
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("bench%d", os.Getpid()%100000)
	}
	cfg := testbed.Config{Name: name, Target: o.Target}.Defaults()
	prefix := scanPrefix(cfg.Range, o.Probes, len(scanPorts))
	res := &ScanResults{Target: cfg.Target, Prefix: prefix.String(), Ports: scanPorts,
		Probes:  probeCount(prefix, len(scanPorts)),
		Pinning: pinningText(o.Split),
		Skipped: map[string]string{}}
	var tools []string
	tools = append(tools, installedTools(o.Tools, res.Skipped, o.Log)...)
	tb, err := testbed.Up(cfg)
	if err != nil {
		return nil, err
	}
	defer tb.Down()
	if err := tb.Serve(); err != nil {
		return nil, err
	}
	if o.Split {
		if err := testbed.SetRPS(cfg, rpsSecondCPU); err != nil {
			return nil, err
		}
	}
	probe, err := newLinkProbe(cfg)
	if err != nil {
		return nil, err
	}
	defer probe.close()
	truth := cfg.Tally(prefix, scanPorts)[testbed.Open]
	job := scanJob{self: o.Self, tb: cfg, prefix: prefix, ports: scanPorts, waitS: max(1, int(o.Wait.Seconds())), dir: o.Dir, cpu: -1}
	if o.Split {
		job.cpu = 0
	}

	for round := 1; round <= o.Runs; round++ {
		for _, rate := range o.Rates {
			for _, tool := range tools {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				job.rate = rate
				r := measureScan(ctx, tool, job, probe, truth)
				r.Round = round
				res.Runs = append(res.Runs, r)
				fmt.Fprintf(o.Log, "round %d/%d %-12s rate %-9s %9.0f pps  found %6.2f%%  cpu %5.2fs  rss %5.1f MB %s\n",
					round, o.Runs, tool, rateName(rate), r.SendPPS, r.FoundPct(), r.Usage.CPUS(), r.Usage.PeakRSSMB, r.Error)
			}
		}
	}
	if o.Memory && contains(tools, "xdpscan") && ctx.Err() == nil {
		m, err := memoryCheck(ctx, job, probe)
		if err != nil {
			return res, fmt.Errorf("memory check: %w", err)
		}
		res.Memory = m
		fmt.Fprintf(o.Log, "memory: %s %.1f MB, %s %.1f MB\n", m.Small, m.SmallRSSMB, m.Large, m.LargeRSSMB)
	}
	return res, nil
}

// measureScan runs one tool once and attributes every figure.
func measureScan(ctx context.Context, tool string, job scanJob, probe *linkProbe, truth int) ScanRun {
	r := ScanRun{Tool: tool, RateAsked: job.rate, TruthOpen: truth}
	before, err := probe.snapshot()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if tool == "xdpscan-xdptx" {
		// Frames sent from XDP reach only a veth end with NAPI: GRO on at
		// the target's end for this tool's runs alone. With it on for
		// every tool, masscan found 39-49% at its maximum on the kernel
		// target (the 256-frame NAPI ring has no backpressure for a
		// socket sender), so the others keep the testbed as it was.
		if err := setTargetGRO(job.tb, true); err != nil {
			r.Error = err.Error()
			return r
		}
		defer setTargetGRO(job.tb, false)
		// Split, it sends through a relay on the second CPU (--tx-relay-cpu):
		// without one, nothing paces the sender to the target's softirq
		// on the other CPU and 50-95% of the frames were dropped at the
		// peer's 256-frame ring (hand runs, session 7).
	}
	sampler := probe.sampleTx()
	out, usage, err := runScanTool(ctx, tool, job)
	window := sampler.stop()
	r.Usage = usage
	after, serr := probe.snapshot()
	if err == nil {
		err = serr
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	d := after.sub(before)
	r.ScanLink, r.TargetLink, r.SoftnetDrops, r.NftDrops, r.ScannerRSTs = d.scan, d.target, d.softnet, d.nft, d.rsts
	r.ProbesSent = out.probes
	r.RelayCPUS = out.relayCPUS
	if r.ProbesSent == 0 { // masscan and zmap do not say: what left the link, less the kernel's RSTs
		r.ProbesSent = d.scan.TxPackets - min(d.scan.TxPackets, d.rsts+d.icmp)
	}
	if window > 0 {
		r.SendPPS = float64(r.ProbesSent) / window.Seconds()
	}
	if r.ProbesSent > 0 {
		r.CPUPerMillion = usage.CPUS() / float64(r.ProbesSent) * 1e6
	}
	if tool == "sendmmsg" {
		return r
	}
	seen := map[netip.AddrPort]bool{}
	for _, ap := range out.open {
		switch {
		case seen[ap]:
			r.Duplicates++
		case job.prefix.Contains(ap.Addr()) && job.tb.State(ap.Addr(), ap.Port()) == testbed.Open:
			r.Found++
		default:
			r.FalsePos++
		}
		seen[ap] = true
	}
	return r
}

func memoryCheck(ctx context.Context, job scanJob, probe *linkProbe) (*MemoryCheck, error) {
	small := job
	small.prefix, small.ports, small.rate = job.tb.Range, []uint16{80}, 0
	_, su, err := runScanTool(ctx, "xdpscan", small)
	if err != nil {
		return nil, err
	}
	large := small
	large.prefix = netip.MustParsePrefix("198.18.0.0/15")
	large.ports = make([]uint16, 100)
	for i := range large.ports {
		large.ports[i] = uint16(8000 + i)
	}
	large.ports[0], large.ports[1] = 22, 80
	sampler := probe.sampleTx()
	out, lu, err := runScanTool(ctx, "xdpscan", large)
	window := sampler.stop()
	if err != nil {
		return nil, err
	}
	m := &MemoryCheck{Small: small.prefix.String() + " × 1 port", SmallProbes: probeCount(small.prefix, 1), SmallRSSMB: su.PeakRSSMB,
		Large: large.prefix.String() + " × 100 ports", LargeProbes: out.probes, LargeRSSMB: lu.PeakRSSMB}
	if window > 0 {
		m.LargePPS = float64(out.probes) / window.Seconds()
	}
	return m, nil
}

func rateName(r float64) string {
	if r <= 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f", r)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// linkProbe reads the testbed's loss counters and samples the scanner
// link's transmit count to time the send window.
type linkProbe struct {
	tb           testbed.Config
	scan, target *netdev.Link
}

type snapshot struct {
	scan, target       LinkStats
	softnet, nft, rsts uint64
	icmp               uint64 // the scanner kernel's ICMP errors (answers to keepLinkAwake)
}

func (a snapshot) sub(b snapshot) snapshot {
	return snapshot{a.scan.Sub(b.scan), a.target.Sub(b.target), a.softnet - b.softnet, a.nft - b.nft, a.rsts - b.rsts, a.icmp - b.icmp}
}

func newLinkProbe(cfg testbed.Config) (*linkProbe, error) {
	s, err := netdev.OpenIn(cfg.ScanNS(), testbed.ScanIf)
	if err != nil {
		return nil, err
	}
	t, err := netdev.OpenIn(cfg.TargetNS(), testbed.TargetIf)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &linkProbe{tb: cfg, scan: s, target: t}, nil
}

func (p *linkProbe) close() { p.scan.Close(); p.target.Close() }

func (p *linkProbe) snapshot() (snapshot, error) {
	var s snapshot
	var err error
	if s.scan, err = p.scan.Read(); err != nil {
		return s, err
	}
	if s.target, err = p.target.Read(); err != nil {
		return s, err
	}
	if s.softnet, err = softnetDrops(); err != nil {
		return s, err
	}
	tb, _ := testbed.Existing(p.tb)
	if tb != nil && p.tb.Target == testbed.TargetKernel {
		if s.nft, err = tb.FilteredDrops(); err != nil {
			return s, err
		}
	}
	if s.rsts, err = testbed.SNMP(p.tb.ScanNS(), "Tcp", "OutRsts"); err != nil {
		return s, err
	}
	if s.icmp, err = testbed.SNMP(p.tb.ScanNS(), "Icmp", "OutMsgs"); err != nil {
		return s, err
	}
	return s, nil
}

// txSampler records the scanner link's transmit counter every 5ms.
type txSampler struct {
	probe *linkProbe
	done  chan struct{}
	wg    sync.WaitGroup
	times []time.Time
	tx    []uint64
}

func (p *linkProbe) sampleTx() *txSampler {
	s := &txSampler{probe: p, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := p.scan.Read(); err == nil {
				s.times = append(s.times, time.Now())
				s.tx = append(s.tx, st.TxPackets)
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the send window: the total time of
// the sampling intervals in which the counter grew at least 5% as fast as
// at its peak. Stragglers after the end (late replies' RSTs) do not
// stretch it, and the pauses between zmap's one-port runs do not count.
func (s *txSampler) stop() time.Duration {
	close(s.done)
	s.wg.Wait()
	return sendWindow(s.times, s.tx)
}

func sendWindow(rawTimes []time.Time, rawTx []uint64) time.Duration {
	if len(rawTx) < 2 {
		return 0
	}
	// Rates only over intervals of at least 4ms: a late tick followed by a
	// prompt one leaves a few microseconds between two samples, and the
	// rate over those would make every real interval look idle.
	const minInterval = 4 * time.Millisecond
	times, tx := rawTimes[:1:1], rawTx[:1:1]
	for i := 1; i < len(rawTx); i++ {
		if rawTimes[i].Sub(times[len(times)-1]) >= minInterval || i == len(rawTx)-1 {
			times = append(times, rawTimes[i])
			tx = append(tx, rawTx[i])
		}
	}
	var peak float64
	rate := make([]float64, len(tx))
	for i := 1; i < len(tx); i++ {
		if dt := times[i].Sub(times[i-1]).Seconds(); dt > 0 {
			rate[i] = float64(tx[i]-tx[i-1]) / dt
		}
		peak = math.Max(peak, rate[i])
	}
	var active time.Duration
	for i := 1; i < len(tx); i++ {
		if peak > 0 && rate[i] >= 0.05*peak {
			active += times[i].Sub(times[i-1])
		}
	}
	return active
}

// pinningText says what ran where, for the table and results.json.
func pinningText(split bool) string {
	const xdptx = "xdpscan-xdptx (--tx xdp) runs with GRO on at the target's veth end (NAPI, which XDP frames need), every other tool with it off"
	if !split {
		return "none: on veth the target's receive softirq runs on the sending CPU whoever sends, so each scanner has both CPUs " +
			"and its CPU seconds include the target's work; " + xdptx
	}
	return "split: every tool on CPU 0, the testbed's receive softirqs (target stack or responder, and the replies) on CPU 1 (RPS on both veth ends), " +
		"so CPU seconds are each tool's own work; xdpscan-xdptx (--tx xdp) transmits through a relay kernel thread on CPU 1 " +
		"(--tx-relay-cpu 1), whose CPU time (the transmit and the target's receive path) is reported apart; " + xdptx
}

// RPS masks for testbed.SetRPS.
const (
	rpsOff       = 0
	rpsSecondCPU = 1 << 1
	// relayCPU is the CPU of rpsSecondCPU, where xdpscan-xdptx's relay
	// runs in split runs.
	relayCPU = 1
)

// setTargetGRO turns GRO on or off at the target's veth end.
func setTargetGRO(tb testbed.Config, on bool) error {
	state := "off"
	if on {
		state = "on"
	}
	if out, err := exec.Command("ip", "netns", "exec", tb.TargetNS(), "ethtool", "-K", testbed.TargetIf, "gro", state).CombinedOutput(); err != nil {
		return fmt.Errorf("ethtool -K %s gro %s: %v: %s", testbed.TargetIf, state, err, out)
	}
	return nil
}
