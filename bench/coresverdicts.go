package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// CoresCaptureVerdicts judges issue 25's capture targets against tcpdump
// and a bare XDP_PASS program:
//   - AF_PACKET flood (--gen socket): -w -s 128 keeps the flood at least
//     1.08x tcpdump -w's; --count-only at least 0.98 of XDP_PASS's;
//   - XDP frames (--gen xdp) with --xdp-mode native: -w at least 1.4x
//     tcpdump -w's.
//
// Each is a ratio of flood rates taken within a round (runs seconds apart)
// and summarised over the rounds by its median and the bootstrap 95%
// interval of that median. Whole floods on this VM drift by a third
// between rounds and sometimes within one (docs/bench/cores.md); a target
// is met only when the interval's lower end reaches it, never by the
// median of a few lucky rounds. Where the attach/detach windows ran
// (--pairs), they decide count-only vs XDP_PASS: the ratio of the two
// programs' flood kept, with its interval from resampling both programs'
// windows.
func CoresCaptureVerdicts(r *CaptureResults) []Verdict {
	var out []Verdict
	switch {
	case r.Gen == "socket":
		out = append(out,
			roundRatioVerdict(r, "25. capture, AF_PACKET flood: -w -s 128 vs tcpdump -w", "xdp", "tcpdump", 1.08),
			countVsPassVerdict(r))
	case r.Gen == "xdp" && r.XDPMode == "native":
		out = append(out, roundRatioVerdict(r, "25. capture, native mode on XDP frames: -w vs tcpdump -w", "xdp", "tcpdump", 1.4))
	}
	return out
}

// minRatioRounds is the fewest rounds whose ratios can meet a target. The
// interval's lower end is an order statistic of the rounds: with 5 rounds
// the worst one (a resample's median is the smallest ratio 5.8% of the
// time, more than 2.5%), so every round must reach the target; with 7 the
// second worst (1.0% and 10.8%), so one bad round is forgiven.
const minRatioRounds = 5

// roundRatioVerdict: a's flood rate over b's in every round where both ran
// without error.
func roundRatioVerdict(r *CaptureResults, name, a, b string, want float64) Verdict {
	v := Verdict{Target: name, Want: fmt.Sprintf(">= %.2fx %s's flood rate: the 95%% interval of the median per-round ratio at or above it", want, b)}
	rs := captureRoundRatios(r.Runs, a, b)
	if len(rs) == 0 {
		v.Missing = a + " or " + b + " has no successful run in the same round"
		return v
	}
	low, high := bootstrapMedian(rs)
	v.Value = median(rs)
	v.Got = fmt.Sprintf("median %.2fx (95%% interval %.2f-%.2f), range %.2f-%.2f over %d rounds", v.Value, low, high, rs[0], rs[len(rs)-1], len(rs))
	v.Met = len(rs) >= minRatioRounds && low >= want
	if len(rs) < minRatioRounds {
		v.Got += fmt.Sprintf("; at least %d rounds judge it", minRatioRounds)
	}
	return v
}

// countVsPassVerdict: --count-only's flood rate over XDP_PASS's.
func countVsPassVerdict(r *CaptureResults) Verdict {
	const want = 0.98
	v := roundRatioVerdict(r, "25. capture, AF_PACKET flood: --count-only vs XDP_PASS", "xdp-count", "xdp-pass", want)
	count, okC := pairedOf(r, "xdp-count")
	pass, okP := pairedOf(r, "xdp-pass")
	if !okC || !okP || pass.KeptPct <= 0 {
		return v
	}
	ratio := count.KeptPct / pass.KeptPct
	low, high := bootstrapKeptRatio(ToggleResult{Windows: count.Windows}.triples(), ToggleResult{Windows: pass.Windows}.triples())
	rounds := v.Got
	if v.Missing != "" {
		rounds = v.Missing
	}
	v.Missing = ""
	v.Value = ratio
	v.Want = fmt.Sprintf(">= %.2f of XDP_PASS's flood kept in the attach/detach windows: the 95%% interval's lower end at or above it", want)
	v.Got = fmt.Sprintf("%.3f (95%% interval %.3f-%.3f): flood kept %.1f%% (count-only, %s) vs %.1f%% (XDP_PASS, %s) in %d and %d pairs; whole floods per round: %s",
		ratio, low, high, count.KeptPct, count.Mode, pass.KeptPct, pass.Mode, count.Pairs, pass.Pairs, rounds)
	v.Met = low >= want
	return v
}

// captureRoundRatios is, for each round where both ran without error, a's
// flood rate over b's; sorted.
func captureRoundRatios(runs []CaptureRun, a, b string) []float64 {
	at := map[int]map[string]float64{}
	for _, r := range runs {
		if r.Error != "" || r.FloodPPS <= 0 || (r.Tool != a && r.Tool != b) {
			continue
		}
		if at[r.Round] == nil {
			at[r.Round] = map[string]float64{}
		}
		at[r.Round][r.Tool] = r.FloodPPS
	}
	var out []float64
	for _, m := range at {
		x, okA := m[a]
		y, okB := m[b]
		if okA && okB {
			out = append(out, x/y)
		}
	}
	slices.Sort(out)
	return out
}

// bootstrapMedian is the 95% interval of the median of xs over resamples
// drawn with a fixed seed: the same rounds give the same interval.
func bootstrapMedian(xs []float64) (low, high float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, bootstrapResamples)
	draw := make([]float64, len(xs))
	for i := range meds {
		for j := range draw {
			draw[j] = xs[rng.IntN(len(xs))]
		}
		meds[i] = median(draw)
	}
	slices.Sort(meds)
	return quantile(meds, 0.025), quantile(meds, 0.975)
}

// bootstrapKeptRatio is the 95% interval of one program's flood kept over
// another's, each resampled from its own windows.
func bootstrapKeptRatio(a, b []triple) (low, high float64) {
	if len(a) < 2 || len(b) < 2 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rs := make([]float64, bootstrapResamples)
	for i := range rs {
		ka, kb := resampleKept(rng, a), resampleKept(rng, b)
		if kb > 0 {
			rs[i] = ka / kb
		}
	}
	slices.Sort(rs)
	return quantile(rs, 0.025), quantile(rs, 0.975)
}
