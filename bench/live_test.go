package bench

import (
	"math"
	"testing"
)

// A tool that costs a known CPU time per packet, between windows of
// nothing attached: the step must say exactly that, with an interval
// around it, and the link rate the tool left.
func TestSummarizeLive(t *testing.T) {
	none := func(pkts uint64, softirq float64) LiveWindow {
		return LiveWindow{Tool: "none", Seconds: 1, LinkPackets: pkts, SoftirqS: softirq, InFile: -1}
	}
	tool := func(pkts uint64, softirq, proc float64, dropped uint64) LiveWindow {
		return LiveWindow{Tool: "xdp", Seconds: 1, LinkPackets: pkts, SoftirqS: softirq, ProcessS: proc,
			ReceivedBy: pkts, Captured: pkts, DroppedBy: dropped, InFile: int64(pkts), RunLinkPackets: pkts + 10}
	}
	// Nothing attached: 300 ns a packet of softirq. The tool: 500 ns of
	// softirq and 200 ns of its own, at 90% and 110% of the rate.
	ws := []LiveWindow{none(1e6, 0.3), tool(0.9e6, 0.45, 0.18, 1), none(1e6, 0.3), tool(1.1e6, 0.55, 0.22, 2), none(1e6, 0.3),
		{Tool: "xdp", Error: "xdpscan exited before it was capturing", InFile: -1}, none(1e6, 0.3)}
	steps := summarizeLive(ws, []string{"xdp"})
	if len(steps) != 2 || steps[0].Tool != "none" || steps[1].Tool != "xdp" {
		t.Fatalf("steps %+v", steps)
	}
	n, s := steps[0], steps[1]
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if n.Windows != 4 || !near(n.CPUNs, 300) || !near(n.LinkPPS, 1e6) {
		t.Errorf("none: %+v", n)
	}
	if s.Windows != 2 || !near(s.CPUNs, 700) || !near(s.SoftirqNs, 500) || !near(s.ProcessNs, 200) || !near(s.AddedNs, 400) {
		t.Errorf("xdp: %d windows, CPU %.1f (softirq %.1f, process %.1f), added %.1f; want 2, 700 (500, 200), 400",
			s.Windows, s.CPUNs, s.SoftirqNs, s.ProcessNs, s.AddedNs)
	}
	if !near(s.KeptPct, 100) || s.KeptLowPct > 90.01 || s.KeptHighPct < 109.99 {
		t.Errorf("rate kept %.1f%% (%.1f-%.1f%%): want 100%%, the interval spanning 90 to 110", s.KeptPct, s.KeptLowPct, s.KeptHighPct)
	}
	if s.AddedLowNs > 400 || s.AddedHighNs < 400 {
		t.Errorf("added interval %.1f to %.1f leaves out 400", s.AddedLowNs, s.AddedHighNs)
	}
	if s.ReceivedBy != 2e6 || s.DroppedBy != 3 || s.InFile != 2e6 || s.RunLink != 2e6+20 || len(s.Errors) != 1 {
		t.Errorf("xdp's words: %+v", s)
	}
}
