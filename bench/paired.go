package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
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

// PairsPerFlood is the most pairs of windows one flood holds: 100 pairs of
// 100 ms windows take 30 s, a bounded flood lasts ~50 s here. More pairs
// take more floods, the programs' floods interleaved (none, pass,
// count-only, none, ...) so a slow drift hits them all alike.
const PairsPerFlood = 100

// PairedRun is one program's attach/detach windows in one flood.
type PairedRun struct {
	Tool   string `json:"tool"`
	Mode   string `json:"xdp_mode"` // as the kernel attached it
	Pairs  int    `json:"pairs"`
	Floods int    `json:"floods"`
	// KeptPct is the flood's rate over all attached windows as a share of
	// its rate over all detached ones.
	KeptPct float64 `json:"flood_kept_pct"`
	// KeptLowPct and KeptHighPct bound KeptPct's 95% interval: the
	// bootstrap over the attached windows, each with its two neighbours.
	KeptLowPct  float64 `json:"flood_kept_ci95_low_pct"`
	KeptHighPct float64 `json:"flood_kept_ci95_high_pct"`
	// The spread: each attached window against the mean of its neighbours.
	KeptP25Pct    float64        `json:"flood_kept_p25_pct"`
	KeptMedianPct float64        `json:"flood_kept_median_pct"`
	KeptP75Pct    float64        `json:"flood_kept_p75_pct"`
	DetachedPPS   float64        `json:"detached_pps"`
	AttachedPPS   float64        `json:"attached_pps"`
	Windows       []ToggleWindow `json:"windows"`
	Error         string         `json:"error,omitempty"`
}

// add takes one flood's windows. Every flood's windows start and end
// detached, so each attached window keeps its own neighbours.
func (p *PairedRun) add(r ToggleResult) {
	p.Mode = r.Mode
	p.Windows = append(p.Windows, r.Windows...)
	p.Floods++
}

// summarize fills the figures from the windows.
func (p *PairedRun) summarize() {
	var on, off ToggleWindow
	p.Pairs = 0
	for _, w := range p.Windows {
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
	r := ToggleResult{Windows: p.Windows}
	kept := r.Kept()
	slices.Sort(kept)
	p.KeptP25Pct, p.KeptMedianPct, p.KeptP75Pct = quantile(kept, 0.25), median(kept), quantile(kept, 0.75)
	p.KeptLowPct, p.KeptHighPct = bootstrapKept(r.triples())
}

// triple is an attached window with the detached ones on either side.
type triple struct{ before, on, after ToggleWindow }

func (r ToggleResult) triples() []triple {
	var out []triple
	for i := 1; i+1 < len(r.Windows); i++ {
		t := triple{r.Windows[i-1], r.Windows[i], r.Windows[i+1]}
		if t.on.Attached && !t.before.Attached && !t.after.Attached {
			out = append(out, t)
		}
	}
	return out
}

// bootstrapResamples is how many resamples bootstrapKept draws: enough
// that the interval's ends move by under a tenth of a point between seeds.
const bootstrapResamples = 2000

// bootstrapKept is the 95% interval of the flood kept (attached rate over
// detached rate) over resamples of the triples, drawn with a fixed seed so
// that the same windows give the same interval.
func bootstrapKept(ts []triple) (low, high float64) {
	if len(ts) < 2 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kept := make([]float64, bootstrapResamples)
	for i := range kept {
		kept[i] = resampleKept(rng, ts)
	}
	slices.Sort(kept)
	return quantile(kept, 0.025), quantile(kept, 0.975)
}

// resampleKept is the flood kept (percent) of one resample of ts, drawn
// with replacement; 0 when the detached windows saw nothing.
func resampleKept(rng *rand.Rand, ts []triple) float64 {
	var on, off ToggleWindow
	for range ts {
		t := ts[rng.IntN(len(ts))]
		on.Packets, on.Seconds = on.Packets+t.on.Packets, on.Seconds+t.on.Seconds
		off.Packets = off.Packets + t.before.Packets + t.after.Packets
		off.Seconds = off.Seconds + t.before.Seconds + t.after.Seconds
	}
	if off.PPS() <= 0 {
		return 0
	}
	return 100 * on.PPS() / off.PPS()
}

// quantile of sorted xs, by the nearest rank (0 for none).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Round(q*float64(len(sorted)-1)))]
}

// measurePaired floods the target for as long as pairs of windows last
// while `bench xdp-toggle` attaches and detaches the program on its link.
func measurePaired(ctx context.Context, program string, pairs int, o CaptureOptions, tb *testbed.Testbed, floodCPU, captureCPU int) (ToggleResult, error) {
	var r ToggleResult
	flood := toolCmd(ctx, tb.ScanNS(), floodCPU, o.Self, "bench", "flood", "--gen", o.Gen, "-i", testbed.ScanIf,
		"--frame", "udp", "--dst", filteredAddr(tb.Config).String(), "--count", strconv.Itoa(pairedFloodPackets))
	if err := flood.Start(); err != nil {
		return r, fmt.Errorf("start the flood: %w", err)
	}
	toggle, err := runTool(toolCmd(ctx, tb.TargetNS(), captureCPU, o.Self, "bench", "xdp-toggle", "-i", testbed.TargetIf,
		"--program", program, "--filter", captureFilter, "--mode", o.XDPMode,
		"--pairs", strconv.Itoa(pairs), "--window", o.PairWindow.String()))
	// The flood has done its part; stop it as a user would.
	_ = flood.Process.Signal(os.Interrupt)
	_ = flood.Wait()
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(toggle.Stdout, &r); err != nil {
		return r, fmt.Errorf("bench xdp-toggle output %q: %w", toggle.Stdout, err)
	}
	if len(r.triples()) == 0 {
		return r, fmt.Errorf("the flood ended before the first pair of windows")
	}
	return r, nil
}

// measureAllPaired runs o.Pairs pairs of windows for each program in
// floods of at most PairsPerFlood pairs, the programs' floods interleaved.
func measureAllPaired(ctx context.Context, o CaptureOptions, tools []string, tb *testbed.Testbed, floodCPU, captureCPU int) ([]PairedRun, error) {
	var runs []PairedRun
	for _, pp := range PairedPrograms {
		if pp.Tool == "none" || slices.Contains(tools, pp.Tool) {
			runs = append(runs, PairedRun{Tool: pp.Tool})
		}
	}
	program := func(tool string) string {
		i := slices.IndexFunc(PairedPrograms, func(pp struct{ Tool, Program string }) bool { return pp.Tool == tool })
		return PairedPrograms[i].Program
	}
	for done := 0; done < o.Pairs; done += PairsPerFlood {
		pairs := min(PairsPerFlood, o.Pairs-done)
		for i := range runs {
			p := &runs[i]
			if err := ctx.Err(); err != nil {
				return runs, err
			}
			if p.Error != "" {
				continue
			}
			r, err := measurePaired(ctx, program(p.Tool), pairs, o, tb, floodCPU, captureCPU)
			if err != nil {
				p.Error = err.Error()
			} else {
				p.add(r)
			}
			p.summarize()
			fmt.Fprintf(o.Log, "paired %-10s %3d pairs in %d floods  flood kept %5.1f%% (95%% interval %5.1f-%5.1f%%; windows: median %5.1f%%)  detached %8.0f pps %s\n",
				p.Tool, p.Pairs, p.Floods, p.KeptPct, p.KeptLowPct, p.KeptHighPct, p.KeptMedianPct, p.DetachedPPS, p.Error)
		}
	}
	return runs, nil
}

// DefaultPairWindow is how long each attached or detached window counts:
// long enough that reading the counters (~0.1 ms) is noise, short enough
// that the VM's drift within a pair is small.
const DefaultPairWindow = 100 * time.Millisecond
