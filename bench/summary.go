package bench

import (
	"math"
	"slices"
)

// median of xs (0 for none).
// Median is the middle of xs (the mean of the two middle values for an
// even count; 0 for none), xs left unsorted.
func Median(xs []float64) float64 { return median(xs) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ScanStep is one tool at one asked rate, over the rounds.
type ScanStep struct {
	Tool          string   `json:"tool"`
	RateAsked     float64  `json:"rate_asked"`
	Runs          int      `json:"runs"`
	SendPPS       float64  `json:"send_pps_median"`
	FoundPct      float64  `json:"found_pct_median"`
	MinFoundPct   float64  `json:"found_pct_min"`
	Exact         bool     `json:"exact"` // every run found all the truth, nothing false, no error
	FalsePos      int      `json:"false_positives_max"`
	Duplicates    int      `json:"duplicates_max"`
	CPUS          float64  `json:"cpu_s_median"`
	CPUPerMillion float64  `json:"cpu_s_per_million_median"`
	RelayCPUS     float64  `json:"relay_kthread_cpu_s_median,omitempty"` // see ScanRun.RelayCPUS
	PeakRSSMB     float64  `json:"peak_rss_mb_median"`
	WallS         float64  `json:"wall_s_median"`
	TargetDrops   uint64   `json:"target_veth_drops_max"`
	SoftnetDrops  uint64   `json:"softnet_drops_max"`
	ScannerRSTs   float64  `json:"scanner_kernel_rsts_median"`
	Errors        []string `json:"errors,omitempty"`
}

// Steps groups runs by tool and asked rate, in the order first seen.
func (r *ScanResults) Steps() []ScanStep {
	type key struct {
		tool string
		rate float64
	}
	var order []key
	groups := map[key][]ScanRun{}
	for _, run := range r.Runs {
		k := key{run.Tool, run.RateAsked}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], run)
	}
	var out []ScanStep
	for _, k := range order {
		runs := groups[k]
		st := ScanStep{Tool: k.tool, RateAsked: k.rate, Runs: len(runs), Exact: true, MinFoundPct: math.Inf(1)}
		var pps, found, cpu, cpum, relay, rss, wall, rsts []float64
		for _, run := range runs {
			if run.Error != "" {
				st.Errors = append(st.Errors, run.Error)
				st.Exact = false
				continue
			}
			pps = append(pps, run.SendPPS)
			found = append(found, run.FoundPct())
			cpu = append(cpu, run.Usage.CPUS())
			cpum = append(cpum, run.CPUPerMillion)
			relay = append(relay, run.RelayCPUS)
			rss = append(rss, run.Usage.PeakRSSMB)
			wall = append(wall, run.Usage.WallS)
			rsts = append(rsts, float64(run.ScannerRSTs))
			st.MinFoundPct = math.Min(st.MinFoundPct, run.FoundPct())
			st.FalsePos = max(st.FalsePos, run.FalsePos)
			st.Duplicates = max(st.Duplicates, run.Duplicates)
			st.TargetDrops = max(st.TargetDrops, run.TargetLink.RxDropped+run.TargetLink.TxDropped)
			st.SoftnetDrops = max(st.SoftnetDrops, run.SoftnetDrops)
			if k.tool != "sendmmsg" && (run.Found != run.TruthOpen || run.FalsePos > 0) {
				st.Exact = false
			}
		}
		if len(pps) == 0 {
			st.MinFoundPct = 0
		}
		st.SendPPS, st.FoundPct, st.CPUS, st.CPUPerMillion = median(pps), median(found), median(cpu), median(cpum)
		st.PeakRSSMB, st.WallS, st.ScannerRSTs = median(rss), median(wall), median(rsts)
		st.RelayCPUS = median(relay)
		out = append(out, st)
	}
	return out
}

// MaxExactRate is the highest median send rate at which tool found all of
// the truth in every run (0 if it never did).
func MaxExactRate(steps []ScanStep, tool string) float64 {
	best := 0.0
	for _, s := range steps {
		if s.Tool == tool && s.Exact {
			best = math.Max(best, s.SendPPS)
		}
	}
	return best
}

// stepAtMax is the tool's step at its maximum rate (asked 0), or its
// highest asked rate.
func stepAtMax(steps []ScanStep, tool string) (ScanStep, bool) {
	var best ScanStep
	ok := false
	for _, s := range steps {
		if s.Tool != tool {
			continue
		}
		if !ok || s.RateAsked == 0 || (best.RateAsked != 0 && s.RateAsked > best.RateAsked) {
			best, ok = s, true
		}
	}
	return best, ok
}

// CaptureStep is one tool over the rounds.
type CaptureStep struct {
	Tool         string   `json:"tool"`
	Runs         int      `json:"runs"`
	FloodPPS     float64  `json:"flood_pps_median"`
	FloodKeptPct float64  `json:"flood_kept_pct_median"`
	LostMax      uint64   `json:"lost_max"`
	DroppedMax   uint64   `json:"dropped_by_kernel_max"` // the tool's own words
	AddedCPUNs   float64  `json:"added_cpu_ns_per_packet_median"`
	ToolCPUNs    float64  `json:"tool_cpu_ns_per_packet_median"`
	PeakRSSMB    float64  `json:"peak_rss_mb_median"`
	Errors       []string `json:"errors,omitempty"`
}

// Steps groups the capture runs by tool.
func (r *CaptureResults) Steps() []CaptureStep {
	var order []string
	groups := map[string][]CaptureRun{}
	for _, run := range r.Runs {
		if _, ok := groups[run.Tool]; !ok {
			order = append(order, run.Tool)
		}
		groups[run.Tool] = append(groups[run.Tool], run)
	}
	var out []CaptureStep
	for _, tool := range order {
		st := CaptureStep{Tool: tool, Runs: len(groups[tool])}
		var pps, kept, added, toolNs, rss []float64
		for _, run := range groups[tool] {
			if run.Error != "" {
				st.Errors = append(st.Errors, run.Error)
				continue
			}
			pps = append(pps, run.FloodPPS)
			kept = append(kept, run.FloodKeptPct)
			added = append(added, run.AddedCPUNs)
			toolNs = append(toolNs, run.ToolCPUNs)
			rss = append(rss, run.Usage.PeakRSSMB)
			st.LostMax = max(st.LostMax, run.Lost())
			st.DroppedMax = max(st.DroppedMax, run.DroppedBy)
		}
		st.FloodPPS, st.FloodKeptPct, st.AddedCPUNs, st.ToolCPUNs, st.PeakRSSMB = median(pps), median(kept), median(added), median(toolNs), median(rss)
		out = append(out, st)
	}
	return out
}
