package bench

import (
	"fmt"
	"slices"

	"github.com/xdpscan/xdpscan/testbed"
)

// SendPathVerdicts judges issue 25's CPU targets for the default send path
// (tool "xdpscan", AF_PACKET sendmmsg) on the kernel target, each tool at
// its maximum: CPU per million probes at most 0.2 of masscan's, 0.25 of
// zmap's, and 1.2x the bare sendmmsg loop's.
//
// Each is a ratio taken within a round (the two runs minutes apart at
// most), then summarised over the rounds: median and range. On a shared
// VM one tool's figures move 30-50% between runs, and ratios of medians
// taken over different moments mix those drifts; a ratio within a round
// sees both runs through the same load. A target is met only if every
// round meets it.
func SendPathVerdicts(r *ScanResults) []Verdict {
	if r.Target != testbed.TargetKernel {
		return nil
	}
	var out []Verdict
	for _, c := range []struct {
		tool, name string
		want       float64
	}{
		{"masscan", "masscan's", 0.2},
		{"zmap", "zmap's", 0.25},
		{"sendmmsg", "the bare sendmmsg loop's", 1.2},
	} {
		v := Verdict{Target: "2. default send path: CPU per million probes vs " + c.tool,
			Want: fmt.Sprintf("<= %.2f of %s in every round (at each one's maximum)", c.want, c.name)}
		rs := roundRatios(r.Runs, "xdpscan", c.tool)
		if len(rs) == 0 {
			v.Missing = "xdpscan or " + c.tool + " has no successful run at its maximum in the same round"
			out = append(out, v)
			continue
		}
		slices.Sort(rs)
		v.Value = median(rs)
		v.Got = fmt.Sprintf("median %.2f, range %.2f-%.2f over %d rounds", v.Value, rs[0], rs[len(rs)-1], len(rs))
		v.Met = rs[len(rs)-1] <= c.want
		out = append(out, v)
	}
	return out
}

// roundRatios is, for each round where both ran at their maximum without
// error, a's CPU per million probes over b's.
func roundRatios(runs []ScanRun, a, b string) []float64 {
	at := map[int]map[string]float64{}
	for _, r := range runs {
		if r.RateAsked != 0 || r.Error != "" || r.CPUPerMillion <= 0 || (r.Tool != a && r.Tool != b) {
			continue
		}
		if at[r.Round] == nil {
			at[r.Round] = map[string]float64{}
		}
		at[r.Round][r.Tool] = r.CPUPerMillion
	}
	var out []float64
	for _, m := range at {
		if x, ok := m[a]; ok {
			if y, ok := m[b]; ok {
				out = append(out, x/y)
			}
		}
	}
	return out
}
