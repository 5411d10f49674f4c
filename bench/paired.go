package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
)

// PairedPrograms are what the attach/detach windows measure, each in one
// flood: nothing (the method's control: every window alike, so its figure
// shows the method's own error), the XDP program that only passes, and the
// program `capture --count-only` attaches.
var PairedPrograms = []struct{ Tool, Program string }{
	{"none", "none"}, {"xdp-pass", "pass"}, {"xdp-count", "count-only"},
}

// pairedFloodPackets bounds each paired flood; the windows end with it or
// before.
const pairedFloodPackets = 100_000_000

// PairedRun is one program's attach/detach windows in one flood.
type PairedRun struct {
	Tool  string `json:"tool"`
	Mode  string `json:"xdp_mode"` // as the kernel attached it
	Pairs int    `json:"pairs"`
	// KeptPct is the flood's rate over all attached windows as a share of
	// its rate over all detached ones.
	KeptPct float64 `json:"flood_kept_pct"`
	// The spread: each attached window against the mean of its neighbours.
	KeptP25Pct    float64        `json:"flood_kept_p25_pct"`
	KeptMedianPct float64        `json:"flood_kept_median_pct"`
	KeptP75Pct    float64        `json:"flood_kept_p75_pct"`
	DetachedPPS   float64        `json:"detached_pps"`
	AttachedPPS   float64        `json:"attached_pps"`
	Windows       []ToggleWindow `json:"windows"`
	Error         string         `json:"error,omitempty"`
}

// summarize fills the figures from the windows.
func (p *PairedRun) summarize(r ToggleResult) {
	p.Mode, p.Windows = r.Mode, r.Windows
	var on, off ToggleWindow
	for _, w := range r.Windows {
		sum := &off
		if w.Attached {
			sum = &on
			p.Pairs++
		}
		sum.Packets += w.Packets
		sum.Seconds += w.Seconds
	}
	p.AttachedPPS, p.DetachedPPS = on.PPS(), off.PPS()
	if p.DetachedPPS > 0 {
		p.KeptPct = 100 * p.AttachedPPS / p.DetachedPPS
	}
	kept := r.Kept()
	slices.Sort(kept)
	p.KeptP25Pct, p.KeptMedianPct, p.KeptP75Pct = quantile(kept, 0.25), median(kept), quantile(kept, 0.75)
}

// quantile of sorted xs, by the nearest rank (0 for none).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Round(q*float64(len(sorted)-1)))]
}

// measurePaired floods the target for as long as the windows last while
// `bench xdp-toggle` attaches and detaches the program on its link.
func measurePaired(ctx context.Context, tool, program string, o CaptureOptions, tb *testbed.Testbed, floodCPU, captureCPU int) PairedRun {
	p := PairedRun{Tool: tool}
	flood := toolCmd(ctx, tb.ScanNS(), floodCPU, o.Self, "bench", "flood", "--gen", o.Gen, "-i", testbed.ScanIf,
		"--frame", "udp", "--dst", filteredAddr(tb.Config).String(), "--count", strconv.Itoa(pairedFloodPackets))
	if err := flood.Start(); err != nil {
		p.Error = fmt.Sprintf("start the flood: %v", err)
		return p
	}
	toggle, err := runTool(toolCmd(ctx, tb.TargetNS(), captureCPU, o.Self, "bench", "xdp-toggle", "-i", testbed.TargetIf,
		"--program", program, "--filter", captureFilter, "--mode", o.XDPMode,
		"--pairs", strconv.Itoa(o.Pairs), "--window", o.PairWindow.String()))
	// The flood has done its part; stop it as a user would.
	_ = flood.Process.Signal(os.Interrupt)
	_ = flood.Wait()
	if err != nil {
		p.Error = err.Error()
		return p
	}
	var r ToggleResult
	if err := json.Unmarshal(toggle.Stdout, &r); err != nil {
		p.Error = fmt.Sprintf("bench xdp-toggle output %q: %v", toggle.Stdout, err)
		return p
	}
	p.summarize(r)
	if p.Pairs == 0 {
		p.Error = "the flood ended before the first pair of windows"
	}
	return p
}

// DefaultPairWindow is how long each attached or detached window counts:
// long enough that reading the counters (~0.1 ms) is noise, short enough
// that the VM's drift within a pair is small.
const DefaultPairWindow = 100 * time.Millisecond
