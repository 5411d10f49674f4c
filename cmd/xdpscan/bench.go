package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bench"
	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/testbed"
)

const benchUsage = `Usage:
  xdpscan bench scan [--runs 3] [--probes N] [--target kernel|xdp|both]
                     [--tools LIST] [--rates LIST] [--out DIR]
  xdpscan bench capture [--runs 5] [--packets N] [--gen xdp|socket]
                     [--xdp-mode auto|native|generic] [--pairs 100]
                     [--tools LIST] [--out DIR]
  xdpscan bench flood -i IFACE --dst ADDR --count N [--frame udp|syn]
                     [--gen socket|xdp]
  xdpscan bench xdp-pass -i IFACE [--mode auto|native|generic]
  xdpscan bench xdp-toggle -i IFACE --program none|pass|count-only
                     [--filter EXPR] [--mode native] [--pairs 30]
                     [--window 100ms]

bench scan and bench capture bring up their own testbed, run xdpscan and the
tools it is compared with on exactly the same work, interleaved round after
round (A B C A B C) so drift hits all alike, print the medians side by side
with the speed targets, and write DIR/results.json (every raw figure and the
machine), DIR/scan.svg and DIR/capture.svg. masscan, zmap and tcpdump come
from Debian (apt-get install masscan zmap tcpdump); a missing one is skipped
with that hint. bench flood is the packet generator they use; bench xdp-pass
holds an XDP program that only passes packets (the floor of any XDP program on
the link) until Ctrl-C. bench xdp-toggle attaches and detaches a program in
alternating windows while a flood runs and prints each window's receive rate
(JSON): how bench capture measures what a program costs the flood through the
VM's drift.

Everything stays on the testbed's veth pair, inside 198.18.0.0/15, bounded in
packets and time; the testbed is removed at the end, even on Ctrl-C.
`

func runBench(args []string) error {
	if len(args) == 0 {
		return usageError("bench: say %s (see `xdpscan bench --help`)", benchSubcommands)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(benchUsage)
		return nil
	}
	switch args[0] {
	case "scan":
		return benchScan(args[1:])
	case "capture":
		return benchCapture(args[1:])
	case "flood":
		return benchFlood(args[1:])
	case "xdp-pass":
		return benchXDPPass(args[1:])
	case "xdp-toggle":
		return benchXDPToggle(args[1:])
	}
	return usageError("bench: unknown %q: say %s (see `xdpscan bench --help`)", args[0], benchSubcommands)
}

const benchSubcommands = "scan, capture, flood, xdp-pass or xdp-toggle"

// defaultPin splits sender and receiver over two CPUs where there are two.
func defaultPin() string {
	if runtime.NumCPU() >= 2 {
		return "split"
	}
	return "none"
}

func benchScan(args []string) error {
	fs := newFlags("bench scan", "xdpscan bench scan [flags]")
	runs := fs.Int("runs", 3, "interleaved rounds; the table shows medians")
	probes := fs.Uint64("probes", 262144, "probes per scan at least: the testbed range (up to its /16) x 4 open ports")
	target := fs.String("target", "kernel", "who answers: kernel (real TCP stack), xdp (the XDP responder) or both")
	tools := fs.String("tools", strings.Join(bench.ScanTools, ","), "tools to compare (sendmmsg: the bare send loop on the same link)")
	rates := fs.String("rates", "50000,100000,200000,max", "send rates asked of every tool; max = each tool's maximum")
	memory := fs.Bool("memory", true, "also compare xdpscan's peak RSS on the range x 1 port and 198.18.0.0/15 x 100 ports")
	wait := fs.Duration("wait", 2*time.Second, "how long every scanner listens after its last probe")
	out := fs.String("out", "bench-results", "directory for results.json and the SVG plots")
	name := fs.String("name", "", "the testbed's name (testbed up --name; default bench<pid>)")
	pin := fs.String("pin", defaultPin(), "split: every tool on CPU 0, the testbed's receive softirqs on CPU 1 (needs 2 CPUs);\n"+
		"none: no pinning (on veth the target's softirq then runs on, and is charged to, the sending CPU)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pin != "split" && *pin != "none" {
		return usageError("bench scan: --pin %q: use split or none", *pin)
	}
	if *pin == "split" && runtime.NumCPU() < 2 {
		return usageError("bench scan: --pin split needs two CPUs, this machine has %d: use --pin none", runtime.NumCPU())
	}
	var targets []testbed.Target
	switch *target {
	case "kernel", "xdp":
		targets = []testbed.Target{testbed.Target(*target)}
	case "both":
		targets = []testbed.Target{testbed.TargetKernel, testbed.TargetXDP}
	default:
		return usageError("bench scan: --target %q: use kernel, xdp or both", *target)
	}
	toolList, err := benchTools(*tools, bench.ScanTools)
	if err != nil {
		return err
	}
	rateList, err := parseRates(*rates)
	if err != nil {
		return err
	}
	if *runs < 1 || *runs > 20 {
		return usageError("bench scan: --runs %d: use 1 to 20", *runs)
	}
	if *wait < 0 || *wait > time.Minute {
		return usageError("bench scan: --wait %s: use 0 to 1m", *wait)
	}
	if *probes < 1 || *probes > 1<<22 {
		return usageError("bench scan: --probes %d: use 1 to %d (the /16 x 4 ports, x 16 at most)", *probes, 1<<22)
	}
	return withBench(*out, func(ctx context.Context, self, scratch string, res *bench.Results) error {
		for _, t := range targets {
			r, err := bench.RunScan(ctx, bench.ScanOptions{Self: self, Runs: *runs, Probes: *probes, Target: t, Tools: toolList,
				Rates: rateList, Memory: *memory, Wait: *wait, Name: *name, Dir: scratch, Log: os.Stderr, Split: *pin == "split"})
			if r != nil {
				res.SetScan(r)
				bench.WriteScanTable(os.Stdout, r)
				if perr := bench.PlotScan(filepath.Join(*out, "scan-"+string(t)+".svg"), r); perr != nil {
					return perr
				}
				if perr := bench.PlotScan(filepath.Join(*out, "scan.svg"), r); perr != nil {
					return perr
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func benchCapture(args []string) error {
	if wantsLive(args) {
		return benchCaptureLive(args)
	}
	fs := newFlags("bench capture", "xdpscan bench capture [flags]")
	runs := fs.Int("runs", 5, "interleaved rounds; the table shows medians (the flood rate on a VM varies by 10-20% run to run)")
	packets := fs.Uint64("packets", 3_000_000, "flood size per run (60-byte UDP frames)")
	gen := fs.String("gen", "xdp", "flood generator: xdp (frames from the kernel, XDP_TX, as a NIC hands them to XDP: the testbed's highest rate) or socket (an AF_PACKET sendmmsg loop: every frame an skb before it reaches the target)")
	xdpMode := fs.String("xdp-mode", "auto", "attach mode of the XDP captures (xdp-pass, xdp-count, xdp): auto (on veth: xdp-pass generic XDP, which also turns GRO off for the link; xdp-count and xdp at TC ingress, as capture --mode auto does there), native or generic")
	tools := fs.String("tools", strings.Join(bench.CaptureTools, ","), "captures to compare: xdp-pass (an XDP program that only passes: the floor), xdp-count (--count-only), xdp (-w, snaplen 128), pcap (--rx pcap -w), tcpdump (-w)")
	out := fs.String("out", "bench-results", "directory for results.json and the SVG plots")
	pairs := fs.Int("pairs", 300, "after the rounds, attach/detach windows: for nothing (the method's control), xdp-pass and xdp-count, this many pairs each, in floods of at most 100 pairs, the programs' floods interleaved (0: none)")
	window := fs.Duration("pair-window", bench.DefaultPairWindow, "how long each attach/detach window counts")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	toolList, err := benchTools(*tools, bench.CaptureTools)
	if err != nil {
		return err
	}
	if *runs < 1 || *runs > 20 {
		return usageError("bench capture: --runs %d: use 1 to 20", *runs)
	}
	if *packets < 1000 || *packets > 50_000_000 {
		return usageError("bench capture: --packets %d: use 1000 to 50000000", *packets)
	}
	if *gen != "xdp" && *gen != "socket" {
		return usageError("bench capture: --gen %q: use xdp or socket", *gen)
	}
	if _, err := loader.ParseMode(*xdpMode); err != nil {
		return usageError("bench capture: --xdp-mode: %v", err)
	}
	if *pairs < 0 || *pairs > 1000 {
		return usageError("bench capture: --pairs %d: use 0 to 1000", *pairs)
	}
	if *window < 10*time.Millisecond || *window > 10*time.Second {
		return usageError("bench capture: --pair-window %s: use 10ms to 10s", *window)
	}
	return withBench(*out, func(ctx context.Context, self, scratch string, res *bench.Results) error {
		r, err := bench.RunCapture(ctx, bench.CaptureOptions{Self: self, Runs: *runs, Packets: *packets, Gen: *gen, XDPMode: *xdpMode, Tools: toolList,
			Dir: *out, Log: os.Stderr, Pairs: *pairs, PairWindow: *window})
		if r != nil {
			res.Capture = r
			bench.WriteCaptureTable(os.Stdout, r)
			if perr := bench.PlotCapture(filepath.Join(*out, "capture.svg"), r); perr != nil {
				return perr
			}
		}
		return err
	})
}

// withBench checks privileges, makes DIR, loads DIR/results.json (so a
// scan and a capture bench land in one file), runs fn, and writes the
// results and the targets even when fn stopped early.
func withBench(out string, fn func(ctx context.Context, self, scratch string, res *bench.Results) error) error {
	if err := requireCaps(true); err != nil {
		return &exitError{code: 77, err: err}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find own binary: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return usageError("bench: --out %s: %v", out, err)
	}
	scratch, err := os.MkdirTemp("", "xdpscan-bench-")
	if err != nil {
		return fmt.Errorf("bench: scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	res := &bench.Results{}
	if b, err := os.ReadFile(filepath.Join(out, "results.json")); err == nil {
		_ = json.Unmarshal(b, res) // a stale or foreign file is simply replaced
	}
	// A scan and a capture bench share the file; each says what made it.
	command, started := "xdpscan "+strings.Join(os.Args[1:], " "), time.Now().UTC()
	if len(os.Args) > 2 && os.Args[2] == "capture" {
		res.CaptureCommand, res.CaptureStarted = command, started
	} else {
		res.Command, res.Started = command, started
	}
	res.Machine = bench.ThisMachine()
	res.Versions = bench.ToolVersions()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runErr := fn(ctx, self, scratch, res)
	res.Finish()
	bench.WriteVerdicts(os.Stdout, res.Verdicts)
	if err := res.WriteJSON(out); err != nil {
		return fmt.Errorf("bench: write results: %w", err)
	}
	fmt.Printf("\nwrote %s\n", strings.Join([]string{filepath.Join(out, "results.json"), filepath.Join(out, "*.svg")}, ", "))
	if ctx.Err() != nil {
		return &exitError{code: 130, err: fmt.Errorf("bench interrupted: partial figures written; the testbed is removed")}
	}
	return runErr
}

func benchTools(list string, known []string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == t
		}
		if !ok {
			return nil, usageError("bench: unknown tool %q: use some of %s", t, strings.Join(known, ","))
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, usageError("bench: --tools is empty: use some of %s", strings.Join(known, ","))
	}
	return out, nil
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "max" {
			out = append(out, 0)
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v >= 100 && v <= 100e6) { // NaN too: it compares false both ways
			return nil, usageError("bench scan: --rates: %q is not a rate (100 to 100000000 per second, or max)", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func benchFlood(args []string) error {
	fs := newFlags("bench flood", "xdpscan bench flood -i IFACE --dst ADDR --count N [--frame udp|syn] [--gen socket|xdp]")
	iface := fs.String("i", "", "interface to send on (required)")
	dst := fs.String("dst", "", "destination address, inside 198.18.0.0/15 (required)")
	count := fs.Uint64("count", 0, "frames to send (required; at most 100000000)")
	frame := fs.String("frame", "udp", "udp: 60-byte datagram to port 9; syn: a TCP SYN to port 80")
	gen := fs.String("gen", "socket", "socket: an AF_PACKET sendmmsg loop; xdp: the frame sent from the kernel with XDP_TX (BPF_PROG_RUN live frames, Linux 5.18), which on veth needs NAPI on the peer (an XDP program or GRO on)")
	senders := floodSendersFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkFloodSenders(*senders, *gen); err != nil {
		return err
	}
	if *gen != "socket" && *gen != "xdp" {
		return usageError("bench flood: --gen %q: use socket or xdp", *gen)
	}
	addr, err := netip.ParseAddr(*dst)
	if err != nil || !netip.MustParsePrefix("198.18.0.0/15").Contains(addr) {
		return usageError("bench flood: --dst %q: floods only go to the RFC 2544 benchmarking range 198.18.0.0/15", *dst)
	}
	if *count == 0 || *count > 100_000_000 {
		return usageError("bench flood: --count %d: use 1 to 100000000 (every flood is bounded)", *count)
	}
	if *iface == "" {
		return usageError("bench flood: -i IFACE is required; see `ip link`")
	}
	if err := requireCaps(false); err != nil {
		return &exitError{code: 77, err: err}
	}
	path, err := route.Resolve(addr, *iface, netip.Addr{}, nil)
	if err != nil {
		return err
	}
	b, err := bench.FloodFrame(*frame, path.SrcMAC, path.RouterMAC, path.Src, addr)
	if err != nil {
		return usageError("bench flood: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	flood := bench.Flood
	if *gen == "xdp" {
		flood = bench.FloodXDP
	}
	if *senders > 1 {
		flood = func(ctx context.Context, o bench.FloodOptions) (bench.FloodResult, error) {
			return bench.FloodSenders(ctx, o, *senders)
		}
	}
	r, err := flood(ctx, bench.FloodOptions{Iface: path.Iface, Count: *count, Frame: b})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func benchXDPPass(args []string) error {
	fs := newFlags("bench xdp-pass", "xdpscan bench xdp-pass -i IFACE [--mode auto|native|generic]")
	iface := fs.String("i", "", "interface (required)")
	modeStr := fs.String("mode", "auto", "XDP attach mode: auto, native or generic")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	mode, err := attachFlags("bench xdp-pass", *iface, *modeStr)
	if err != nil {
		return err
	}
	if err := requireCaps(true); err != nil {
		return &exitError{code: 77, err: err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench.HoldPassProgram(ctx, *iface, mode, func(m loader.Mode) {
		fmt.Fprintf(os.Stderr, "listening on %s: XDP_PASS only (%s); Ctrl-C to detach\n", *iface, m)
	})
}

func benchXDPToggle(args []string) error {
	fs := newFlags("bench xdp-toggle", "xdpscan bench xdp-toggle -i IFACE --program none|pass|count-only [--filter EXPR] [--mode native] [--pairs 30] [--window 100ms]")
	iface := fs.String("i", "", "interface a flood is reaching (required)")
	program := fs.String("program", "", "none: attach nothing (the method's control: every window alike); pass: an XDP program that only passes; count-only: the program `capture --count-only FILTER` attaches in --mode (XDP; TC ingress where auto would be generic XDP, as on veth) (required)")
	expr := fs.String("filter", "", "the count-only program's tcpdump filter")
	modeStr := fs.String("mode", "native", "XDP attach mode: auto, native or generic")
	pairs := fs.Int("pairs", 30, "attached windows, each between two detached ones (1 to 1000)")
	window := fs.Duration("window", bench.DefaultPairWindow, "how long each window counts (10ms to 10s)")
	settle := fs.Duration("settle", 50*time.Millisecond, "wait after each attach and detach before counting")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	mode, err := attachFlags("bench xdp-toggle", *iface, *modeStr)
	if err != nil {
		return err
	}
	if !slices.Contains([]string{"none", "pass", "count-only"}, *program) {
		return usageError("bench xdp-toggle: --program %q: use none, pass or count-only", *program)
	}
	if *pairs < 1 || *pairs > 1000 {
		return usageError("bench xdp-toggle: --pairs %d: use 1 to 1000", *pairs)
	}
	if *window < 10*time.Millisecond || *window > 10*time.Second {
		return usageError("bench xdp-toggle: --window %s: use 10ms to 10s", *window)
	}
	if *settle < 0 || *settle > 10*time.Second {
		return usageError("bench xdp-toggle: --settle %s: use 0 to 10s", *settle)
	}
	if err := requireCaps(true); err != nil {
		return &exitError{code: 77, err: err}
	}
	var prog *ebpf.Program
	var tcIngress bool
	switch *program {
	case "pass":
		prog, err = bench.PassProgram()
	case "none":
	case "count-only":
		// What capture --count-only attaches in this mode: XDP, or TC
		// ingress where auto would be generic XDP.
		var closeProg func()
		prog, tcIngress, closeProg, err = capture.LoadIngress(capture.Config{Iface: *iface, XDPMode: mode, Filter: *expr, Snaplen: 262144, CountOnly: true})
		if err == nil {
			defer closeProg()
		}
	}
	if err != nil {
		return err
	}
	if prog != nil && *program == "pass" {
		defer prog.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.Toggle(ctx, bench.ToggleOptions{Iface: *iface, Mode: mode, Program: prog, TCIngress: tcIngress, Pairs: *pairs, Window: *window, Settle: *settle,
		Ready: func() {
			fmt.Fprintf(os.Stderr, "toggling %s on %s: %d pairs of %s windows\n", *program, *iface, *pairs, *window)
		}})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
