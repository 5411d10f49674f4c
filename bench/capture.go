package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/testbed"
)

// CaptureTools are the captures `bench capture` compares; "none" (the
// flood with nothing capturing) always runs first in each round.
var CaptureTools = []string{"xdp-pass", "xdp-count", "xdp", "pcap", "tcpdump"}

// captureFilter matches every packet of the flood, written the same for
// every tool.
const captureFilter = "udp and dst port 9"

// CaptureOptions configures `xdpscan bench capture`.
type CaptureOptions struct {
	Self    string
	Runs    int
	Packets uint64 // flood size per run
	Gen     string // flood generator: "xdp" or "socket" (bench flood --gen)
	XDPMode string // the XDP captures' --mode
	Tools   []string
	Dir     string // where -w files go (a real file, deleted after counting)
	// Pairs is how many attach/detach pairs of windows each of
	// PairedPrograms gets, in a flood of its own after the rounds (0: none);
	// PairWindow how long each window counts.
	Pairs      int
	PairWindow time.Duration
	Log        io.Writer
}

// CaptureRun is one capture of one flood: every raw figure.
type CaptureRun struct {
	Tool     string  `json:"tool"`
	Round    int     `json:"round"`
	Sent     uint64  `json:"sent"`
	FloodPPS float64 `json:"flood_pps"`
	// The tool's own words (tcpdump's three lines; xdpscan prints them too).
	Captured   uint64 `json:"captured"`
	ReceivedBy uint64 `json:"received_by_filter"`
	DroppedBy  uint64 `json:"dropped_by_kernel"`
	InFile     int64  `json:"in_file"` // packets read back from the -w file; -1 without one
	// The kernel's words.
	TargetRxDropped uint64 `json:"target_veth_rx_dropped"`
	SoftnetDrops    uint64 `json:"softnet_drops"`
	ReachedStack    uint64 `json:"reached_stack"` // the target's nftables counter: every flood packet must get there
	// Cost.
	Usage        Usage   `json:"tool_usage"`
	SystemBusyS  float64 `json:"system_busy_s"` // all CPUs, from the flood's start to the tool's exit
	AddedCPUNs   float64 `json:"added_cpu_ns_per_packet"`
	ToolCPUNs    float64 `json:"tool_cpu_ns_per_packet"`
	FloodKeptPct float64 `json:"flood_kept_pct"` // flood rate vs this round's "none"
	Error        string  `json:"error,omitempty"`
}

// Lost is what the tool missed of what was sent: the worse of its own
// count and the file's.
func (r CaptureRun) Lost() uint64 {
	got := r.ReceivedBy
	if r.Tool == "none" || r.Tool == "xdp-pass" {
		return 0
	}
	if r.Tool != "xdp-count" {
		got = r.Captured
		if r.InFile >= 0 {
			got = min(got, uint64(r.InFile))
		}
	}
	if r.Tool == "none" || got >= r.Sent {
		return 0
	}
	return r.Sent - got
}

// CaptureResults is everything `bench capture` measured.
type CaptureResults struct {
	Packets   uint64            `json:"packets"`
	Frame     string            `json:"frame"`
	Filter    string            `json:"filter"`
	Generator string            `json:"generator"`
	Gen       string            `json:"gen"` // bench flood --gen: "xdp" or "socket"
	Pinning   string            `json:"pinning"`
	XDPMode   string            `json:"xdp_mode"`
	Skipped   map[string]string `json:"skipped,omitempty"`
	Runs      []CaptureRun      `json:"runs"`
	// Paired are the attach/detach windows (CaptureOptions.Pairs).
	Paired       []PairedRun `json:"paired,omitempty"`
	PairedMethod string      `json:"paired_method,omitempty"`
}

// pairedMethod says what the paired figures are.
const pairedMethod = "the program attached for a window, detached for the next (%s each, 50 ms to settle after each change), %d pairs, " +
	"in floods of at most %d pairs, the programs' floods interleaved; " +
	"flood kept = the rate over all attached windows / the rate over all detached ones, with its 95%% interval (bootstrap over the attached windows, each with its neighbours). " +
	"Whole floods with and without a capture drift apart by a third on this VM " +
	"(host contention, not reported as steal time); adjacent windows a fraction of a second apart see the program through that drift. " +
	"\"none\" attaches nothing: its figure is the method's own error"

// RunCapture floods the testbed's target link with opt.Packets known
// datagrams per run while each tool captures them, interleaved.
func RunCapture(ctx context.Context, o CaptureOptions) (*CaptureResults, error) {
	cfg := testbed.Config{Name: fmt.Sprintf("benchc%d", os.Getpid()%100000)}.Defaults()
	generator := "xdpscan bench flood --gen socket: one AF_PACKET sendmmsg loop (batches of 64, one prebuilt frame), so every frame is an skb before it reaches the target; faster per CPU than trafgen here"
	if o.Gen == "xdp" {
		// veth drops XDP frames sent to a peer without NAPI.
		cfg.TargetNAPI = true
		generator = "xdpscan bench flood --gen xdp: the frame sent from the kernel with XDP_TX (BPF_PROG_RUN live frames, batches of 64), so it reaches the target as a raw frame, as from a NIC; GRO on at the target's veth end (veth needs its NAPI for such frames) for every tool"
	}
	floodCPU, captureCPU := -1, -1
	pinning := "none (one CPU)"
	if runtime.NumCPU() >= 2 {
		floodCPU, captureCPU = 0, 1
		pinning = "flood generator on CPU 0, capturing tool on CPU 1; the target's receive softirq (and so XDP and AF_PACKET's copy) runs on CPU 0 with the sender, as veth does"
	}
	if o.XDPMode == "" {
		o.XDPMode = "auto"
	}
	pinning += "; XDP captures attached with --mode " + o.XDPMode
	if o.XDPMode == "auto" {
		pinning += " (on veth xdp-pass is generic XDP, while xdpscan's captures take received packets at TC ingress, where auto would be generic XDP)"
	}
	if o.XDPMode != "native" && o.Gen == "xdp" {
		pinning += " (generic on veth: the kernel skips GRO on a link with a generic XDP program, so with GRO on, as --gen xdp needs, an XDP program makes this flood cheaper than nothing attached; --xdp-mode native keeps GRO, as XDP on a NIC does)"
	}
	res := &CaptureResults{Packets: o.Packets, Frame: "60-byte UDP to " + filteredAddr(cfg).String() + ":9 (dropped by the target's nftables after capture)",
		Filter: captureFilter, Generator: generator, Gen: o.Gen, Pinning: pinning, XDPMode: o.XDPMode, Skipped: map[string]string{}}
	tools := []string{"none"}
	tools = append(tools, installedTools(o.Tools, res.Skipped, o.Log)...)
	tb, err := testbed.Up(cfg)
	if err != nil {
		return nil, err
	}
	defer tb.Down()
	target, err := netdev.OpenIn(cfg.TargetNS(), testbed.TargetIf)
	if err != nil {
		return nil, err
	}
	defer target.Close()

	for round := 1; round <= o.Runs; round++ {
		for _, tool := range tools {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			r := measureCapture(ctx, tool, o, tb, target, floodCPU, captureCPU)
			r.Round = round
			res.Runs = append(res.Runs, r)
			fmt.Fprintf(o.Log, "round %d/%d %-10s flood %8.0f pps  lost %8d  system busy %5.2fs  tool cpu %5.2fs %s\n",
				round, o.Runs, tool, r.FloodPPS, r.Lost(), r.SystemBusyS, r.Usage.CPUS(), r.Error)
		}
	}
	res.compare()
	if o.Pairs > 0 {
		res.PairedMethod = fmt.Sprintf(pairedMethod, o.PairWindow, o.Pairs, PairsPerFlood)
		paired, err := measureAllPaired(ctx, o, tools, tb, floodCPU, captureCPU)
		res.Paired = paired
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// compare sets each run's figures relative to the median of the runs with
// nothing capturing: one quiet baseline, not one noisy neighbour.
func (r *CaptureResults) compare() {
	var pps, busy []float64
	for _, run := range r.Runs {
		if run.Tool == "none" && run.Error == "" {
			pps = append(pps, run.FloodPPS)
			busy = append(busy, run.SystemBusyS)
		}
	}
	basePPS, baseBusy := median(pps), median(busy)
	for i := range r.Runs {
		run := &r.Runs[i]
		if run.Sent == 0 {
			continue
		}
		if basePPS > 0 {
			run.FloodKeptPct = 100 * run.FloodPPS / basePPS
		}
		run.AddedCPUNs = (run.SystemBusyS - baseBusy) / float64(run.Sent) * 1e9
		run.ToolCPUNs = run.Usage.CPUS() / float64(run.Sent) * 1e9
	}
}

// drops is where a flood's frames can be lost on the way to the target,
// read before and after a run: the target link's counters, the softnet
// backlog's drops, and the target's nftables drop counter (which every
// frame that got through the stack ends at).
type drops struct {
	link         netdev.Counters
	softnet, nft uint64
}

func readDrops(tb *testbed.Testbed, target *netdev.Link) (d drops, err error) {
	if d.link, err = target.Read(); err != nil {
		return d, err
	}
	if d.softnet, err = softnetDrops(); err != nil {
		return d, err
	}
	d.nft, err = tb.FilteredDrops()
	return d, err
}

func measureCapture(ctx context.Context, tool string, o CaptureOptions, tb *testbed.Testbed, target *netdev.Link, floodCPU, captureCPU int) CaptureRun {
	r := CaptureRun{Tool: tool, InFile: -1}
	fail := func(err error) CaptureRun { r.Error = err.Error(); return r }
	file := filepath.Join(o.Dir, tool+".pcap")
	statsFile := filepath.Join(o.Dir, tool+".stats.json")
	defer os.Remove(file)
	defer os.Remove(statsFile)
	var args []string
	switch tool {
	case "xdp-pass":
		args = []string{o.Self, "bench", "xdp-pass", "-i", testbed.TargetIf, "--mode", o.XDPMode}
	case "xdp-count":
		args = []string{o.Self, "capture", "-i", testbed.TargetIf, "--mode", o.XDPMode, "--count-only", "--stats-json", statsFile, captureFilter}
	case "xdp":
		args = []string{o.Self, "capture", "-i", testbed.TargetIf, "--mode", o.XDPMode, "-w", file, "-s", "128", "--stats-json", statsFile, captureFilter}
	case "pcap":
		args = []string{o.Self, "capture", "-i", testbed.TargetIf, "--rx", "pcap", "-w", file, "-s", "128", "--stats-json", statsFile, captureFilter}
	case "tcpdump":
		args = []string{"tcpdump", "-i", testbed.TargetIf, "-n", "-w", file, "-s", "128", captureFilter}
	case "none":
	default:
		return fail(fmt.Errorf("unknown capture tool %q: use %v", tool, CaptureTools))
	}

	before, err := readDrops(tb, target)
	if err != nil {
		return fail(err)
	}
	var capture *runningTool
	if args != nil {
		capture, err = startUntil(toolCmd(ctx, tb.TargetNS(), captureCPU, args[0], args[1:]...), "listening on", 20*time.Second)
		if err != nil {
			return fail(err)
		}
	}
	busyBefore, err := busyCPU()
	if err != nil {
		return fail(err)
	}
	flood, err := runTool(toolCmd(ctx, tb.ScanNS(), floodCPU, o.Self, "bench", "flood", "--gen", o.Gen, "-i", testbed.ScanIf,
		"--frame", "udp", "--dst", filteredAddr(tb.Config).String(), "--count", strconv.FormatUint(o.Packets, 10)))
	var fr FloodResult
	if err == nil {
		if jerr := json.Unmarshal(flood.Stdout, &fr); jerr != nil {
			err = fmt.Errorf("bench flood output %q: %w", flood.Stdout, jerr)
		}
	}
	// Let the flood's last frames reach the target before the capture is
	// stopped: a fixed pause did not cover a busy machine, where the
	// target's receive softirq runs late in ksoftirqd, competing with the
	// load. Every flood frame ends at the target's nftables drop counter,
	// after XDP has seen it. Then let the capture take in what is queued,
	// and stop it as a user would.
	if err == nil {
		waitSettled(func() (uint64, error) {
			n, err := tb.FilteredDrops()
			return n - before.nft, err
		}, fr.Sent, 500*time.Millisecond, 10*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	var tres procResult
	var terr error
	if capture != nil {
		_ = capture.cmd.Process.Signal(os.Interrupt)
		tres, terr = capture.wait()
	}
	busyAfter, berr := busyCPU()
	if err == nil {
		err = berr
	}
	r.Sent, r.FloodPPS, r.Usage = fr.Sent, fr.PPS, tres.Usage
	r.SystemBusyS = busyAfter - busyBefore
	if err != nil {
		return fail(fmt.Errorf("flood: %w", err))
	}
	if terr != nil {
		return fail(terr)
	}
	after, err := readDrops(tb, target)
	if err != nil {
		return fail(err)
	}
	r.TargetRxDropped = after.link.Sub(before.link).RxDropped
	r.SoftnetDrops = after.softnet - before.softnet
	r.ReachedStack = after.nft - before.nft
	if capture == nil || tool == "xdp-pass" {
		return r
	}
	r.Captured, r.ReceivedBy, r.DroppedBy, err = parseTcpdumpSummary(tres.Stderr)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", tool, err))
	}
	if tool != "xdp-count" {
		n, err := countPcap(file)
		if err != nil {
			return fail(fmt.Errorf("%s wrote %s: %w", tool, file, err))
		}
		r.InFile = n
	}
	return r
}

var summaryLine = regexp.MustCompile(`(?m)(\d+) packets? (captured|received by filter|dropped by kernel)$`)

// parseTcpdumpSummary reads tcpdump's three closing lines (xdpscan capture
// prints the same three).
func parseTcpdumpSummary(stderr []byte) (captured, received, dropped uint64, err error) {
	found := 0
	for _, m := range summaryLine.FindAllSubmatch(stderr, -1) {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		switch string(m[2]) {
		case "captured":
			captured = v
		case "received by filter":
			received = v
		case "dropped by kernel":
			dropped = v
		}
		found++
	}
	if found < 3 {
		return 0, 0, 0, fmt.Errorf("no packets captured/received/dropped summary on stderr: %s", lastLines(stderr, 3))
	}
	return captured, received, dropped, nil
}

// countPcap counts the packets in a pcap file, which also proves it reads.
func countPcap(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		_, _, err := rd.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("after %d packets: %w", n, err)
		}
		n++
	}
}

// waitSettled polls count until it reaches want, stays unchanged for quiet
// (frames lost on the way never arrive), or bound has passed.
func waitSettled(count func() (uint64, error), want uint64, quiet, bound time.Duration) {
	start := time.Now()
	last, lastChange := uint64(0), start
	for time.Since(start) < bound {
		n, err := count()
		if err != nil || n >= want {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
