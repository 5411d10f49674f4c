package bench

import (
	"testing"
)

// TestCoresCaptureVerdicts: ratios are taken within each round; the
// target is met only when the interval of their median clears it, which
// a few rounds or one lucky round cannot do; each flood generator judges
// its own targets.
func TestCoresCaptureVerdicts(t *testing.T) {
	rounds := func(a, b string, pps ...float64) []CaptureRun {
		var out []CaptureRun
		for i := 0; i+1 < len(pps); i += 2 {
			out = append(out, CaptureRun{Tool: a, Round: i/2 + 1, FloodPPS: pps[i]}, CaptureRun{Tool: b, Round: i/2 + 1, FloodPPS: pps[i+1]})
		}
		return out
	}
	const wSocket = "25. capture, AF_PACKET flood: -w -s 128 vs tcpdump -w"
	const wNative = "25. capture, native mode on XDP frames: -w vs tcpdump -w"
	tests := []struct {
		name    string
		gen     string
		mode    string
		runs    []CaptureRun
		target  string
		met     bool
		missing bool
		median  float64
	}{
		{"every round 1.2x through a drift of a third", "socket", "auto",
			rounds("xdp", "tcpdump", 1.2e6, 1e6, 0.8e6, 0.8e6/1.2, 1.2e6, 1e6, 0.9e6, 0.75e6, 1.2e6, 1e6), wSocket, true, false, 1.2},
		{"one lucky round does not lift a median below", "socket", "auto",
			rounds("xdp", "tcpdump", 1e6, 1e6, 2e6, 1e6, 1e6, 1e6, 1e6, 1e6, 1e6, 1e6), wSocket, false, false, 1},
		{"median above, interval not: not met", "socket", "auto",
			rounds("xdp", "tcpdump", 1.1e6, 1e6, 1.1e6, 1e6, 1.1e6, 1e6, 0.9e6, 1e6, 0.9e6, 1e6), wSocket, false, false, 1.1},
		{"5 rounds: the interval's lower end is the worst round", "socket", "auto",
			rounds("xdp", "tcpdump", 1e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6), wSocket, false, false, 1.2},
		{"7 rounds: one bad round is forgiven", "socket", "auto",
			rounds("xdp", "tcpdump", 1e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6), wSocket, true, false, 1.2},
		{"7 rounds: two bad rounds are not", "socket", "auto",
			rounds("xdp", "tcpdump", 1e6, 1e6, 1e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6, 1.2e6, 1e6), wSocket, false, false, 1.2},
		{"too few rounds to judge", "socket", "auto",
			rounds("xdp", "tcpdump", 2e6, 1e6, 2e6, 1e6), wSocket, false, false, 2},
		{"a failed run leaves its round out", "xdp", "native",
			append(rounds("xdp", "tcpdump", 1.5e6, 1e6, 1.5e6, 1e6, 1.5e6, 1e6, 1.5e6, 1e6, 1.5e6, 1e6),
				CaptureRun{Tool: "xdp", Round: 6, FloodPPS: 0.1e6}, CaptureRun{Tool: "tcpdump", Round: 6, FloodPPS: 1e6, Error: "exit status 1"}),
			wNative, true, false, 1.5},
		{"never in the same round: missing", "xdp", "native",
			[]CaptureRun{{Tool: "xdp", Round: 1, FloodPPS: 1e6}, {Tool: "tcpdump", Round: 2, FloodPPS: 1e6}}, wNative, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := verdictsByName(CoresCaptureVerdicts(&CaptureResults{Gen: tt.gen, XDPMode: tt.mode, Runs: tt.runs}))
			v, ok := vs[tt.target]
			if !ok {
				t.Fatalf("no verdict %q in %v", tt.target, vs)
			}
			if v.Met != tt.met || (v.Missing != "") != tt.missing || v.Value < tt.median-1e-9 || v.Value > tt.median+1e-9 {
				t.Fatalf("%+v: want met %v, missing %v, median %v", v, tt.met, tt.missing, tt.median)
			}
		})
	}
	t.Run("each generator judges its own targets", func(t *testing.T) {
		for _, c := range []struct{ gen, mode, absent string }{
			{"socket", "auto", wNative}, {"xdp", "native", wSocket}, {"xdp", "auto", wNative}, {"xdp", "auto", wSocket},
		} {
			if _, ok := verdictsByName(CoresCaptureVerdicts(&CaptureResults{Gen: c.gen, XDPMode: c.mode}))[c.absent]; ok {
				t.Errorf("--gen %s --xdp-mode %s judged %q", c.gen, c.mode, c.absent)
			}
		}
	})
}

// TestCountVsPassPaired: where attach/detach windows ran for both
// programs they decide, by the interval of the ratio of their flood kept.
func TestCountVsPassPaired(t *testing.T) {
	// windows alternate detached/attached, each 0.1 s; attached keeps keep
	// of the detached rate, with a little noise.
	windows := func(keep float64, pairs int) []ToggleWindow {
		var ws []ToggleWindow
		for i := 0; i < pairs; i++ {
			noise := 1 + 0.01*float64(i%5-2)
			ws = append(ws, ToggleWindow{Packets: 100000, Seconds: 0.1},
				ToggleWindow{Attached: true, Packets: uint64(100000 * keep * noise), Seconds: 0.1})
		}
		return append(ws, ToggleWindow{Packets: 100000, Seconds: 0.1})
	}
	paired := func(tool string, keep float64) PairedRun {
		p := PairedRun{Tool: tool, Windows: windows(keep, 200)}
		p.summarize()
		return p
	}
	const name = "25. capture, AF_PACKET flood: --count-only vs XDP_PASS"
	tests := []struct {
		name        string
		count, pass float64
		met         bool
	}{
		{"count-only within 1% of XDP_PASS", 0.95, 0.955, true},
		{"count-only 4% below", 0.92, 0.96, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &CaptureResults{Gen: "socket", Paired: []PairedRun{paired("xdp-count", tt.count), paired("xdp-pass", tt.pass)}}
			v := verdictsByName(CoresCaptureVerdicts(r))[name]
			if v.Met != tt.met || v.Missing != "" {
				t.Fatalf("%+v: want met %v", v, tt.met)
			}
			if want := tt.count / tt.pass; v.Value < want-0.005 || v.Value > want+0.005 {
				t.Fatalf("ratio %.3f, want %.3f", v.Value, want)
			}
		})
	}
}
