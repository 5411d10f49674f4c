package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/internal/outfile"
)

// LiveTools are the captures `bench capture --live` alternates with
// nothing attached, on the traffic an interface already carries.
var LiveTools = []string{"tcpdump", "xdp", "xdp-count"}

// liveSnaplen is every tool's snapshot length: a busy link's full frames
// would make the windows a benchmark of the disk.
const liveSnaplen = "128"

// LiveOptions configures `xdpscan bench capture --live`.
type LiveOptions struct {
	Self     string
	Iface    string
	Filter   string        // tcpdump expression, the same for every tool ("": everything)
	Duration time.Duration // the whole run, tools' start and stop included
	Window   time.Duration // how long each window counts
	XDPMode  string
	Tools    []string
	Dir      string // where the -w files go, each deleted after its window
	Log      io.Writer
}

// LiveWindow is one counted window: nothing attached ("none") or one tool
// running, with what the kernel and the tool said.
type LiveWindow struct {
	Tool    string  `json:"tool"`
	Seconds float64 `json:"seconds"`
	// The kernel's words, over the window.
	LinkPackets  uint64  `json:"link_rx_packets"`
	LinkDropped  uint64  `json:"link_rx_dropped"`
	SoftnetDrops uint64  `json:"softnet_drops"`
	SoftirqS     float64 `json:"softirq_s"` // all CPUs, /proc/stat
	ProcessS     float64 `json:"process_s"` // the tool's user + system time, /proc/PID/stat
	// The tool's own words (tcpdump's three lines; xdpscan prints the
	// same), over its whole run, which brackets the window.
	Captured   uint64 `json:"captured"`
	ReceivedBy uint64 `json:"received_by_filter"`
	DroppedBy  uint64 `json:"dropped_by_kernel"`
	InFile     int64  `json:"in_file"` // packets read back from the -w file; -1 without one
	// RunLinkPackets is what the link received over the tool's whole run,
	// from before its start to after its exit: what its words compare with.
	RunLinkPackets uint64 `json:"run_link_rx_packets"`
	Error          string `json:"error,omitempty"`
}

// CPUNs is the window's softirq and process time per link packet.
func (w LiveWindow) CPUNs() float64 {
	if w.LinkPackets == 0 {
		return 0
	}
	return (w.SoftirqS + w.ProcessS) / float64(w.LinkPackets) * 1e9
}

// LiveStep is one tool over its windows, against the "none" windows on
// either side of each.
type LiveStep struct {
	Tool    string  `json:"tool"`
	Windows int     `json:"windows"`
	LinkPPS float64 `json:"link_pps"`
	// Link rate over the tool's windows as a share of its neighbours', with
	// the 95% interval (on a NIC a capture cannot slow what arrives; on
	// veth the sender pays the receiver's softirq).
	KeptPct     float64 `json:"link_rate_kept_pct"`
	KeptLowPct  float64 `json:"link_rate_kept_ci95_low_pct"`
	KeptHighPct float64 `json:"link_rate_kept_ci95_high_pct"`
	// The tool's words, summed over its runs; the kernel's, over its windows.
	ReceivedBy    uint64 `json:"received_by_filter"`
	Captured      uint64 `json:"captured"`
	DroppedBy     uint64 `json:"dropped_by_kernel"`
	InFile        int64  `json:"in_file"`
	RunLink       uint64 `json:"run_link_rx_packets"` // the link's packets over the tool's runs
	KernelDropped uint64 `json:"kernel_dropped"`      // link rx_dropped + softnet drops
	// CPU per link packet (softirq on all CPUs + the tool's process).
	SoftirqNs float64 `json:"softirq_ns_per_packet"`
	ProcessNs float64 `json:"process_ns_per_packet"`
	CPUNs     float64 `json:"cpu_ns_per_packet"`
	// AddedNs is CPUNs less that of the neighbouring windows with nothing
	// attached, with its 95% interval.
	AddedNs     float64  `json:"added_cpu_ns_per_packet"`
	AddedLowNs  float64  `json:"added_cpu_ns_per_packet_ci95_low"`
	AddedHighNs float64  `json:"added_cpu_ns_per_packet_ci95_high"`
	Errors      []string `json:"errors,omitempty"`
}

// LiveResults is everything a live bench measured.
type LiveResults struct {
	Interface string       `json:"interface"`
	Filter    string       `json:"filter"`
	XDPMode   string       `json:"xdp_mode"`
	WindowS   float64      `json:"window_s"`
	Method    string       `json:"method"`
	Windows   []LiveWindow `json:"windows"`
	Steps     []LiveStep   `json:"steps"`
}

const liveMethod = "windows of %s, nothing attached between every two tool windows (none, tcpdump, none, xdp, none, xdp-count, none, ...); " +
	"each tool started before its window opens and stopped after it closes; CPU = softirq time of all CPUs (/proc/stat) + the tool's own " +
	"user and system time (/proc/PID/stat), per packet the link received in the window; added = a tool's CPU per packet less that of the " +
	"windows on either side; 95%% intervals: the bootstrap over a tool's windows, each with its two neighbours (%d resamples, as bench capture's pairs); " +
	"every tool with snaplen %s; read-only: nothing is sent"

// RunLive alternates windows of nothing attached with windows of each
// tool on o.Iface in the current namespace, until o.Duration would be
// passed by the next pair.
func RunLive(ctx context.Context, o LiveOptions) (*LiveResults, error) {
	link, err := netdev.Open(o.Iface)
	if err != nil {
		return nil, err
	}
	defer link.Close()
	res := &LiveResults{Interface: o.Iface, Filter: o.Filter, XDPMode: o.XDPMode, WindowS: o.Window.Seconds(),
		Method: fmt.Sprintf(liveMethod, o.Window, bootstrapResamples, liveSnaplen)}
	l := &liveRun{o: o, link: link}
	start := time.Now()
	slot := map[string]time.Duration{} // how long a tool's last slot took
	w, err := l.window(ctx, "none", 0)
	if err != nil {
		return res, err
	}
	res.Windows = append(res.Windows, w)
	for done := false; !done; {
		for _, tool := range o.Tools {
			est := slot[tool]
			if est == 0 {
				est = 2*o.Window + 2*time.Second // a first guess at a tool's start and stop
			}
			if time.Since(start)+est+o.Window > o.Duration {
				done = true
				break
			}
			t0 := time.Now()
			tw := l.toolWindow(ctx, tool)
			first := slot[tool] == 0
			slot[tool] = time.Since(t0)
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if first && tw.Error != "" { // it would fail the same way every time
				res.Windows = append(res.Windows, tw)
				res.Steps = summarizeLive(res.Windows, o.Tools)
				return res, fmt.Errorf("bench capture --live: %s: %s", tool, tw.Error)
			}
			nw, err := l.window(ctx, "none", 0)
			if err != nil {
				return res, err
			}
			res.Windows = append(res.Windows, tw, nw)
			fmt.Fprintf(o.Log, "%-9s %6.2fs %9d link packets %8.0f ns/packet (softirq + process) captured %d dropped %d %s\n",
				tool, tw.Seconds, tw.LinkPackets, tw.CPUNs(), tw.Captured, tw.DroppedBy, tw.Error)
		}
	}
	res.Steps = summarizeLive(res.Windows, o.Tools)
	for _, s := range res.Steps {
		if s.Windows == 0 {
			return res, fmt.Errorf("bench capture --live: %s got no window in --duration %s: give it more time", s.Tool, o.Duration)
		}
	}
	return res, nil
}

type liveRun struct {
	o    LiveOptions
	link *netdev.Link
}

// liveSettle is the pause after a tool stops or starts before a window
// counts: detaching XDP, closing a socket and the ring's last reads.
const liveSettle = 100 * time.Millisecond

// window counts one window; pid > 0 is the tool's process.
func (l *liveRun) window(ctx context.Context, tool string, pid int) (LiveWindow, error) {
	w := LiveWindow{Tool: tool, InFile: -1}
	if err := clock.Sleep(ctx, liveSettle); err != nil {
		return w, err
	}
	c0, err := l.link.Read()
	if err != nil {
		return w, err
	}
	sn0, err := softnetDrops()
	if err != nil {
		return w, err
	}
	si0, err := softirqSeconds()
	if err != nil {
		return w, err
	}
	p0 := processSeconds(pid)
	t0 := time.Now()
	if err := clock.Sleep(ctx, l.o.Window); err != nil {
		return w, err
	}
	c1, err := l.link.Read()
	if err != nil {
		return w, err
	}
	sn1, err := softnetDrops()
	if err != nil {
		return w, err
	}
	si1, err := softirqSeconds()
	if err != nil {
		return w, err
	}
	w.Seconds = time.Since(t0).Seconds()
	w.ProcessS = processSeconds(pid) - p0
	d := c1.Sub(c0)
	w.LinkPackets, w.LinkDropped, w.SoftnetDrops, w.SoftirqS = d.RxPackets, d.RxDropped, sn1-sn0, si1-si0
	return w, nil
}

// toolArgs is the command line of a tool capturing to file.
func (l *liveRun) toolArgs(tool, file, stats string) []string {
	var args []string
	switch tool {
	case "tcpdump":
		args = []string{"tcpdump", "-i", l.o.Iface, "-n", "-s", liveSnaplen, "-w", file}
	case "xdp":
		args = []string{l.o.Self, "capture", "-i", l.o.Iface, "--mode", l.o.XDPMode, "-s", liveSnaplen, "-w", file, "--stats-json", stats}
	case "xdp-count":
		args = []string{l.o.Self, "capture", "-i", l.o.Iface, "--mode", l.o.XDPMode, "--count-only", "--stats-json", stats}
	}
	if l.o.Filter != "" {
		args = append(args, l.o.Filter)
	}
	return args
}

// toolWindow starts tool, counts a window once it is capturing, stops it
// as a user would (SIGINT) and reads what it said and wrote.
func (l *liveRun) toolWindow(ctx context.Context, tool string) LiveWindow {
	file := filepath.Join(l.o.Dir, "live-"+tool+".pcap")
	stats := filepath.Join(l.o.Dir, "live-"+tool+".stats.json")
	defer os.Remove(file)
	defer os.Remove(stats)
	fail := func(w LiveWindow, err error) LiveWindow { w.Tool, w.InFile, w.Error = tool, -1, err.Error(); return w }
	args := l.toolArgs(tool, file, stats)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second // then SIGKILL: every run is bounded
	before, err := l.link.Read()
	if err != nil {
		return fail(LiveWindow{}, err)
	}
	rt, err := startReady(cmd, "listening on", 20*time.Second)
	if err != nil {
		return fail(LiveWindow{}, err)
	}
	w, werr := l.window(ctx, tool, cmd.Process.Pid)
	_ = cmd.Process.Signal(os.Interrupt)
	stderr, err := rt()
	if after, rerr := l.link.Read(); rerr == nil {
		w.RunLinkPackets = after.Sub(before).RxPackets
	}
	if werr != nil {
		return fail(w, werr)
	}
	if err != nil {
		return fail(w, err)
	}
	if w.Captured, w.ReceivedBy, w.DroppedBy, err = parseTcpdumpSummary(stderr); err != nil {
		return fail(w, fmt.Errorf("%s: %w", tool, err))
	}
	if tool != "xdp-count" {
		if w.InFile, err = countPcap(file); err != nil {
			return fail(w, fmt.Errorf("%s wrote %s: %w", tool, file, err))
		}
	}
	return w
}

// startReady starts cmd and returns once its stderr shows ready; the
// function returned waits for its exit and gives all it wrote to stderr.
func startReady(cmd *exec.Cmd, ready string, timeout time.Duration) (func() ([]byte, error), error) {
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	stderr, readyc, done := watchStderr(pipe, ready)
	wait := func() ([]byte, error) {
		<-done
		err := cmd.Wait()
		if err != nil {
			return stderr.Bytes(), fmt.Errorf("%s: %w: %s", cmd.Args[0], err, lastLines(stderr.Bytes(), 3))
		}
		return stderr.Bytes(), nil
	}
	select {
	case <-readyc:
		return wait, nil
	case <-done:
		_, err := wait()
		return nil, fmt.Errorf("%s exited before it was capturing: %v", cmd.Args[0], err)
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		_, _ = wait()
		return nil, fmt.Errorf("%s not capturing after %s (no %q on stderr)", cmd.Args[0], timeout, ready)
	}
}

// softirqSeconds reads /proc/stat: the seconds all CPUs together spent in
// softirq (where XDP and AF_PACKET's copy run for received packets).
func softirqSeconds() (float64, error) {
	f, err := procStatCPU()
	if err != nil {
		return 0, err
	}
	return float64(f[6]) / 100, nil // softirq, in USER_HZ
}

// processSeconds is process pid's user + system seconds so far, all its
// threads (0 for pid 0 or a process gone).
func processSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: the fields count from its ')'.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64) // utime: field 14 of stat(5)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / 100
}

// liveTriple is a tool's window with the nothing-attached ones on either
// side.
type liveTriple struct{ before, on, after LiveWindow }

func liveTriples(ws []LiveWindow, tool string) []liveTriple {
	var out []liveTriple
	for i := 1; i+1 < len(ws); i++ {
		t := liveTriple{ws[i-1], ws[i], ws[i+1]}
		if t.on.Tool == tool && t.on.Error == "" && t.before.Tool == "none" && t.after.Tool == "none" {
			out = append(out, t)
		}
	}
	return out
}

// liveSums are a set of windows added up.
type liveSums struct{ pkts, secs, softirq, proc float64 }

func (s *liveSums) add(w LiveWindow) {
	s.pkts += float64(w.LinkPackets)
	s.secs += w.Seconds
	s.softirq += w.SoftirqS
	s.proc += w.ProcessS
}

func (s liveSums) cpuNs() float64 {
	if s.pkts == 0 {
		return 0
	}
	return (s.softirq + s.proc) / s.pkts * 1e9
}

func (s liveSums) pps() float64 {
	if s.secs == 0 {
		return 0
	}
	return s.pkts / s.secs
}

// liveStats are a set of triples' figures: the tool's windows and their
// neighbours.
func liveStats(ts []liveTriple) (on, off liveSums) {
	for _, t := range ts {
		on.add(t.on)
		off.add(t.before)
		off.add(t.after)
	}
	return on, off
}

// liveBootstrap is the 95% interval of the added CPU per packet and of the
// link rate kept over resamples of the triples, drawn as bench capture's
// pairs are (bootstrapKept: same resamples, seed and quantiles).
func liveBootstrap(ts []liveTriple) (addLow, addHigh, keptLow, keptHigh float64) {
	if len(ts) < 2 {
		return 0, 0, 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	added := make([]float64, bootstrapResamples)
	kept := make([]float64, bootstrapResamples)
	sample := make([]liveTriple, len(ts))
	for i := range added {
		for j := range sample {
			sample[j] = ts[rng.IntN(len(ts))]
		}
		on, off := liveStats(sample)
		added[i] = on.cpuNs() - off.cpuNs()
		if off.pps() > 0 {
			kept[i] = 100 * on.pps() / off.pps()
		}
	}
	slices.Sort(added)
	slices.Sort(kept)
	return quantile(added, 0.025), quantile(added, 0.975), quantile(kept, 0.025), quantile(kept, 0.975)
}

// summarizeLive makes each tool's step, "none" first.
func summarizeLive(ws []LiveWindow, tools []string) []LiveStep {
	var steps []LiveStep
	var none liveSums
	noneStep := LiveStep{Tool: "none", InFile: -1}
	for _, w := range ws {
		if w.Tool == "none" {
			none.add(w)
			noneStep.Windows++
			noneStep.KernelDropped += w.LinkDropped + w.SoftnetDrops
		}
	}
	noneStep.LinkPPS, noneStep.CPUNs = none.pps(), none.cpuNs()
	if none.pkts > 0 {
		noneStep.SoftirqNs = none.softirq / none.pkts * 1e9
	}
	steps = append(steps, noneStep)
	for _, tool := range tools {
		s := LiveStep{Tool: tool, InFile: -1}
		for _, w := range ws {
			if w.Tool != tool {
				continue
			}
			if w.Error != "" {
				s.Errors = append(s.Errors, w.Error)
				continue
			}
			s.ReceivedBy += w.ReceivedBy
			s.Captured += w.Captured
			s.DroppedBy += w.DroppedBy
			s.RunLink += w.RunLinkPackets
			s.KernelDropped += w.LinkDropped + w.SoftnetDrops
			if w.InFile >= 0 {
				s.InFile = max(s.InFile, 0) + w.InFile
			}
		}
		ts := liveTriples(ws, tool)
		s.Windows = len(ts)
		on, off := liveStats(ts)
		s.LinkPPS, s.CPUNs = on.pps(), on.cpuNs()
		if on.pkts > 0 {
			s.SoftirqNs, s.ProcessNs = on.softirq/on.pkts*1e9, on.proc/on.pkts*1e9
		}
		if len(ts) > 0 {
			s.AddedNs = on.cpuNs() - off.cpuNs()
			if off.pps() > 0 {
				s.KeptPct = 100 * on.pps() / off.pps()
			}
		}
		s.AddedLowNs, s.AddedHighNs, s.KeptLowPct, s.KeptHighPct = liveBootstrap(ts)
		steps = append(steps, s)
	}
	return steps
}

// WriteLiveTable prints the steps side by side.
func WriteLiveTable(w io.Writer, r *LiveResults) {
	fmt.Fprintf(w, "\ncapture on %s's own traffic, filter %q (%s windows)\n", r.Interface, r.Filter, time.Duration(r.WindowS*float64(time.Second)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\twindows\tlink pps\tlink pkts (runs)\treceived by filter\tcaptured\tin file\tdropped (tool)\tdropped (kernel)\tCPU ns/pkt\t(softirq\tprocess)\tadded ns/pkt\t95% interval\tlink rate kept\t95% interval\t")
	for _, s := range r.Steps {
		inFile, added, addedCI, kept, keptCI := "-", "-", "-", "-", "-"
		if s.InFile >= 0 {
			inFile = strconv.FormatInt(s.InFile, 10)
		}
		if s.Tool != "none" && s.Windows > 0 {
			added, kept = fmt.Sprintf("%.0f", s.AddedNs), fmt.Sprintf("%.1f%%", s.KeptPct)
			if s.Windows >= 2 {
				addedCI = fmt.Sprintf("%.0f to %.0f", s.AddedLowNs, s.AddedHighNs)
				keptCI = fmt.Sprintf("%.1f-%.1f%%", s.KeptLowPct, s.KeptHighPct)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%d\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t\n", s.Tool, s.Windows, s.LinkPPS,
			s.RunLink, s.ReceivedBy, s.Captured, inFile, s.DroppedBy, s.KernelDropped, s.CPUNs, s.SoftirqNs, s.ProcessNs, added, addedCI, kept, keptCI)
	}
	tw.Flush()
	for _, s := range r.Steps {
		for _, e := range s.Errors {
			fmt.Fprintf(w, "%s: %s\n", s.Tool, e)
		}
	}
	fmt.Fprintf(w, "method: %s\n", r.Method)
}

// WriteLiveJSON writes the results to path.
func WriteLiveJSON(path string, r *LiveResults) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return outfile.WriteFile(path, append(b, '\n'), 0o644)
}
