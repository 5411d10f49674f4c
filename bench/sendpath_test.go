package bench

import (
	"testing"

	"github.com/xdpscan/xdpscan/testbed"
)

// TestSendPathVerdicts: ratios are taken within each round and met only
// if every round meets the target; a failed run leaves its round out; the
// XDP target has no such targets.
func TestSendPathVerdicts(t *testing.T) {
	run := func(tool string, round int, cpuPerM float64, errText string) ScanRun {
		return ScanRun{Tool: tool, Round: round, RateAsked: 0, CPUPerMillion: cpuPerM, Error: errText}
	}
	tests := []struct {
		name    string
		runs    []ScanRun
		tool    string
		met     bool
		missing bool
		median  float64
	}{
		{"every round within 1.2x of the loop", []ScanRun{
			run("xdpscan", 1, 1.1, ""), run("sendmmsg", 1, 1.0, ""),
			run("xdpscan", 2, 2.3, ""), run("sendmmsg", 2, 2.0, ""),
			run("xdpscan", 3, 1.0, ""), run("sendmmsg", 3, 1.0, ""),
		}, "sendmmsg", true, false, 1.1},
		{"one round over: not met, though the medians' ratio would be", []ScanRun{
			run("xdpscan", 1, 1.0, ""), run("sendmmsg", 1, 1.0, ""),
			run("xdpscan", 2, 1.3, ""), run("sendmmsg", 2, 1.0, ""),
			run("xdpscan", 3, 1.0, ""), run("sendmmsg", 3, 1.0, ""),
		}, "sendmmsg", false, false, 1.0},
		{"a failed run leaves its round out", []ScanRun{
			run("xdpscan", 1, 0.5, ""), run("masscan", 1, 5.0, ""),
			run("xdpscan", 2, 9.0, ""), run("masscan", 2, 0, "masscan: exit status 1"),
		}, "masscan", true, false, 0.1},
		{"never in the same round: missing", []ScanRun{
			run("xdpscan", 1, 0.5, ""), run("zmap", 2, 5.0, ""),
		}, "zmap", false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := verdictsByName(SendPathVerdicts(&ScanResults{Target: testbed.TargetKernel, Runs: tt.runs}))
			v, ok := vs["2. default send path: CPU per million probes vs "+tt.tool]
			if !ok {
				t.Fatalf("no verdict for %s in %v", tt.tool, vs)
			}
			if v.Met != tt.met || (v.Missing != "") != tt.missing || v.Value < tt.median-1e-9 || v.Value > tt.median+1e-9 {
				t.Fatalf("%+v: want met %v, missing %v, median %v", v, tt.met, tt.missing, tt.median)
			}
		})
	}
	if vs := SendPathVerdicts(&ScanResults{Target: testbed.TargetXDP}); len(vs) != 0 {
		t.Fatalf("XDP target: %v, want none", vs)
	}
}

func verdictsByName(vs []Verdict) map[string]Verdict {
	m := map[string]Verdict{}
	for _, v := range vs {
		m[v.Target] = v
	}
	return m
}
