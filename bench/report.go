package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes where the figures were taken.
type Machine struct {
	Kernel    string `json:"kernel"`
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	NICDriver string `json:"nic_driver"`
	GoVersion string `json:"go_version"`
}

// ThisMachine reads the kernel release, CPU model and core count.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		NICDriver: "veth (the testbed's pair; ethtool -i reports driver veth)"}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Results is results.json.
type Results struct {
	Command   string                  `json:"command"`
	Started   time.Time               `json:"started"`
	Machine   Machine                 `json:"machine"`
	Versions  map[string]string       `json:"tool_versions"`
	Scans     map[string]*ScanResults `json:"scans,omitempty"` // by target: kernel, xdp
	ScanSteps map[string][]ScanStep   `json:"scan_steps,omitempty"`
	Capture   *CaptureResults         `json:"capture,omitempty"`
	// What made the capture figures, when a scan bench made the rest.
	CaptureCommand string        `json:"capture_command,omitempty"`
	CaptureStarted time.Time     `json:"capture_started,omitzero"`
	CaptureSteps   []CaptureStep `json:"capture_steps,omitempty"`
	Verdicts       []Verdict     `json:"targets"`
}

// ToolVersions asks each compared tool for its version.
func ToolVersions() map[string]string {
	out := map[string]string{}
	for tool, args := range map[string][]string{"masscan": {"--version"}, "zmap": {"--version"}, "tcpdump": {"--version"}} {
		b, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil && len(b) == 0 {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out[tool] = line
				break
			}
		}
	}
	return out
}

// WriteJSON writes dir/results.json.
func (r *Results) WriteJSON(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// anchors are the figures measured on this machine kind with the same
// testbed (../shared/testbed-notes.md): context, not targets.
const scanAnchors = `anchors (kernel target, /16 x 4 ports, this machine kind): masscan max ~82k/s, zmap ~133k/s (149k/s without the scanner kernel's RSTs),
         CPU per million probes: masscan ~16.7 s, zmap ~11 s`
const captureAnchors = `anchors (60-byte UDP flood, one sender, this machine kind): no capture ~674k pps with trafgen; tcpdump -w /dev/null keeps ~68-80% of the flood`

// WriteScanTable prints the scan medians, side by side.
func WriteScanTable(w io.Writer, r *ScanResults) {
	fmt.Fprintf(w, "\nscan: %s target, %s x %d ports = %d probes, truth %d open; medians of %d rounds; pinning: %s\n",
		r.Target, r.Prefix, len(r.Ports), r.Probes, truthOf(r), rounds(r), r.Pinning)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\trate asked\tsent/s\tfound %\tmin %\texact\tfalse+\tdups\tcpu s\tcpu s/M\trelay s\trss MB\ttgt drops\tsoftnet\tscanner RSTs\t")
	for _, s := range r.Steps() {
		found, minFound, exact := fmt.Sprintf("%.2f", s.FoundPct), fmt.Sprintf("%.2f", s.MinFoundPct), fmt.Sprint(s.Exact)
		if s.Tool == "sendmmsg" {
			found, minFound, exact = "-", "-", "-"
		}
		relay := "-"
		if s.RelayCPUS > 0 {
			relay = fmt.Sprintf("%.2f", s.RelayCPUS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%d\t%d\t%.2f\t%.2f\t%s\t%.1f\t%d\t%d\t%.0f\t\n",
			s.Tool, rateName(s.RateAsked), s.SendPPS, found, minFound, exact, s.FalsePos, s.Duplicates,
			s.CPUS, s.CPUPerMillion, relay, s.PeakRSSMB, s.TargetDrops, s.SoftnetDrops, s.ScannerRSTs)
		for _, e := range s.Errors {
			fmt.Fprintf(tw, "  error: %s\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n", e)
		}
	}
	tw.Flush()
	for tool, why := range r.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", tool, why)
	}
	if r.Memory != nil {
		fmt.Fprintf(w, "memory: xdpscan peak RSS %.1f MB for %s (%d probes), %.1f MB for %s (%d probes at %.0f/s)\n",
			r.Memory.SmallRSSMB, r.Memory.Small, r.Memory.SmallProbes, r.Memory.LargeRSSMB, r.Memory.Large, r.Memory.LargeProbes, r.Memory.LargePPS)
	}
	fmt.Fprintln(w, scanAnchors)
}

// WriteCaptureTable prints the capture medians, side by side.
func WriteCaptureTable(w io.Writer, r *CaptureResults) {
	fmt.Fprintf(w, "\ncapture: %d packets per run, %s, filter %q; generator: %s; pinning: %s\n",
		r.Packets, r.Frame, r.Filter, r.Generator, r.Pinning)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\tflood pps\tflood kept %\tlost (max)\tkernel dropped (tool's words)\tadded cpu ns/pkt\ttool cpu ns/pkt\trss MB\t")
	for _, s := range r.Steps() {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%d\t%d\t%.0f\t%.0f\t%.1f\t\n", s.Tool, s.FloodPPS, s.FloodKeptPct, s.LostMax, s.DroppedMax,
			s.AddedCPUNs, s.ToolCPUNs, s.PeakRSSMB)
		for _, e := range s.Errors {
			fmt.Fprintf(tw, "  error: %s\t\t\t\t\t\t\t\t\n", e)
		}
	}
	tw.Flush()
	if len(r.Paired) > 0 {
		fmt.Fprintf(w, "\nattach/detach windows: %s\n", r.PairedMethod)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "program\tmode\tpairs\tfloods\tflood kept %\t95% interval\twindow median %\tmiddle half %\tdetached pps\tattached pps\t")
		for _, p := range r.Paired {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.1f-%.1f\t%.1f\t%.1f-%.1f\t%.0f\t%.0f\t\n", p.Tool, p.Mode, p.Pairs, p.Floods, p.KeptPct,
				p.KeptLowPct, p.KeptHighPct, p.KeptMedianPct, p.KeptP25Pct, p.KeptP75Pct, p.DetachedPPS, p.AttachedPPS)
			if p.Error != "" {
				fmt.Fprintf(tw, "  error: %s\t\t\t\t\t\t\t\t\n", p.Error)
			}
		}
		tw.Flush()
	}
	for tool, why := range r.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", tool, why)
	}
	fmt.Fprintln(w, captureAnchors)
}

// WriteVerdicts prints the targets.
func WriteVerdicts(w io.Writer, vs []Verdict) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintln(w, "\ntargets (ratios from this run):")
	for _, v := range vs {
		mark := "MET    "
		switch {
		case v.Missing != "":
			mark, v.Got = "n/a    ", v.Missing
		case !v.Met:
			mark = "NOT MET"
		}
		fmt.Fprintf(w, "  %s %-45s want %-50s got %s\n", mark, v.Target, v.Want, v.Got)
	}
}

func truthOf(r *ScanResults) int {
	for _, run := range r.Runs {
		if run.Tool != "sendmmsg" {
			return run.TruthOpen
		}
	}
	return 0
}

func rounds(r *ScanResults) int {
	n := 0
	for _, run := range r.Runs {
		n = max(n, run.Round)
	}
	return n
}

// SetScan stores a scan bench's results under its target.
func (r *Results) SetScan(s *ScanResults) {
	if r.Scans == nil {
		r.Scans = map[string]*ScanResults{}
	}
	r.Scans[string(s.Target)] = s
}

// Finish computes the medians and the verdicts of everything present.
func (r *Results) Finish() {
	r.ScanSteps = map[string][]ScanStep{}
	r.Verdicts = nil
	for _, t := range []string{"xdp", "kernel"} {
		s := r.Scans[t]
		if s == nil {
			continue
		}
		r.ScanSteps[t] = s.Steps()
		r.Verdicts = append(r.Verdicts, ScanVerdicts(s)...)
		r.Verdicts = append(r.Verdicts, SendPathVerdicts(s)...)
		if t == "kernel" || r.Scans["kernel"] == nil {
			if s.Memory != nil {
				r.Verdicts = append(r.Verdicts, MemoryVerdict(s.Memory))
			}
		}
	}
	if r.Capture != nil {
		r.CaptureSteps = r.Capture.Steps()
		r.Verdicts = append(r.Verdicts, CaptureVerdicts(r.Capture)...)
		r.Verdicts = append(r.Verdicts, CoresCaptureVerdicts(r.Capture)...)
	}
}
