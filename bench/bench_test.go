package bench

import (
	"encoding/xml"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/testbed"
)

func TestReadListParsesMasscanAndXdpscanLists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.list")
	content := "#masscan\nopen tcp 80 198.18.0.1 1700000000\nclosed tcp 81 198.18.0.1 1700000000\nopen tcp 443 198.18.0.2 1700000001\n# end\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readList(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:80"), netip.MustParseAddrPort("198.18.0.2:443")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := os.WriteFile(path, []byte("open tcp x 198.18.0.1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readList(path); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("a bad line must be an error naming the line, got %v", err)
	}
}

func TestReadAddrsParsesZmapCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zmap.csv")
	if err := os.WriteFile(path, []byte("saddr\n198.18.0.1\n198.18.0.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readAddrs(path)
	if err != nil || len(got) != 2 || got[1] != netip.MustParseAddr("198.18.0.9") {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestParseTcpdumpSummary(t *testing.T) {
	tests := []struct {
		name    string
		stderr  string
		want    [3]uint64
		wantErr bool
	}{
		{"tcpdump", "listening on xs-tgt, link-type EN10MB (Ethernet), snapshot length 128 bytes\n^C1999872 packets captured\n2000000 packets received by filter\n128 packets dropped by kernel\n",
			[3]uint64{1999872, 2000000, 128}, false},
		{"xdpscan", "2000000 packets captured\n2000000 packets received by filter\n0 packets dropped by kernel\nxdpscan: seen 2000000\n",
			[3]uint64{2000000, 2000000, 0}, false},
		{"singular", "1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n", [3]uint64{1, 1, 0}, false},
		{"killed before the summary", "listening on xs-tgt\n", [3]uint64{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, r, d, err := parseTcpdumpSummary([]byte(tt.stderr))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := [3]uint64{c, r, d}; got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSendWindowCountsOnlyActiveSampling(t *testing.T) {
	t0 := time.Unix(0, 0)
	var times []time.Time
	var tx []uint64
	count := uint64(0)
	// 100ms quiet, 200ms at 1000 per 10ms, 300ms quiet, 100ms at 1000 per
	// 10ms (zmap's next port), then a trickle of 10 per 10ms (late RSTs).
	for i := 0; i <= 80; i++ {
		switch {
		case i > 10 && i <= 30, i > 60 && i <= 70:
			count += 1000
		case i > 70:
			count += 10
		}
		times = append(times, t0.Add(time.Duration(i)*10*time.Millisecond))
		tx = append(tx, count)
	}
	if got := sendWindow(times, tx); got != 300*time.Millisecond {
		t.Fatalf("window %v, want 300ms", got)
	}
	// A late tick and a prompt one 50µs apart, mid-send: the window is
	// unchanged, not collapsed to the 50µs.
	jt := append([]time.Time{}, times[:20]...)
	jx := append([]uint64{}, tx[:20]...)
	jt = append(jt, times[19].Add(50*time.Microsecond))
	jx = append(jx, tx[19]+5)
	jt = append(jt, times[20:]...)
	jx = append(jx, tx[20:]...)
	if got := sendWindow(jt, jx); got < 290*time.Millisecond || got > 310*time.Millisecond {
		t.Fatalf("window with jitter %v, want ~300ms", got)
	}
	if got := sendWindow(times[:1], tx[:1]); got != 0 {
		t.Fatalf("one sample: %v", got)
	}
}

func TestScanPrefixCoversTheProbes(t *testing.T) {
	r := netip.MustParsePrefix("198.18.0.0/16")
	tests := []struct {
		probes uint64
		want   string
	}{
		{1, "198.18.0.0/24"},
		{4096, "198.18.0.0/22"},
		{4097, "198.18.0.0/21"},
		{262144, "198.18.0.0/16"},
		{1 << 22, "198.18.0.0/16"}, // never beyond the testbed's range
	}
	for _, tt := range tests {
		if got := scanPrefix(r, tt.probes, 4).String(); got != tt.want {
			t.Errorf("%d probes: %s, want %s", tt.probes, got, tt.want)
		}
	}
}

func TestFloodFramesAreValid(t *testing.T) {
	for _, kind := range []string{"udp", "syn"} {
		f, err := FloodFrame(kind, testbed.ScanMAC, testbed.TargetMAC, testbed.ScanIP, netip.MustParseAddr("198.18.0.250"))
		if err != nil {
			t.Fatal(err)
		}
		if kind == "syn" {
			if ok, err := testpkt.ChecksumsMatch(f); !ok || err != nil {
				t.Errorf("syn frame: checksums wrong (%v)", err)
			}
			continue
		}
		// tcpdump: IP 198.19.0.1.40000 > 198.18.0.250.9: UDP, length 18
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if len(f) != 60 || !ok || udp.DstPort != 9 || udp.Length != 26 || p.ErrorLayer() != nil {
			t.Errorf("udp frame: %d bytes, %v", len(f), p)
		}
	}
	if _, err := FloodFrame("icmp", testbed.ScanMAC, testbed.TargetMAC, testbed.ScanIP, testbed.TargetIP); err == nil {
		t.Error("an unknown frame kind must be an error")
	}
}

// scanFixture is a kernel-target bench where xdpscan is exact at every
// rate up to 300k/s, masscan up to 80k/s and zmap up to 130k/s.
func scanFixture(target testbed.Target) *ScanResults {
	r := &ScanResults{Target: target, Prefix: "198.18.0.0/16", Ports: scanPorts}
	add := func(tool string, rate, pps float64, found int, cpu float64) {
		for round := 1; round <= 3; round++ {
			r.Runs = append(r.Runs, ScanRun{Tool: tool, Round: round, RateAsked: rate, SendPPS: pps + float64(round), ProbesSent: 262144,
				TruthOpen: 1000, Found: found, Usage: Usage{UserS: cpu}, CPUPerMillion: cpu / 0.262144})
		}
	}
	add("xdpscan", 100000, 100000, 1000, 0.3)
	add("xdpscan", 0, 300000, 1000, 0.5)
	add("masscan", 100000, 80000, 1000, 4)
	add("masscan", 0, 90000, 990, 4.4)
	add("zmap", 100000, 100000, 1000, 3)
	add("zmap", 0, 130000, 1000, 2.9)
	add("sendmmsg", 0, 350000, 0, 0.1)
	return r
}

func TestStepsAndMaxExactRate(t *testing.T) {
	steps := scanFixture(testbed.TargetKernel).Steps()
	if len(steps) != 7 {
		t.Fatalf("%d steps, want 7", len(steps))
	}
	if got := MaxExactRate(steps, "masscan"); got != 80002 {
		t.Errorf("masscan's highest exact rate %v, want the median 80002", got)
	}
	if got := MaxExactRate(steps, "xdpscan"); got != 300002 {
		t.Errorf("xdpscan's highest exact rate %v", got)
	}
	if s, _ := stepAtMax(steps, "masscan"); s.RateAsked != 0 || s.FoundPct != 99 {
		t.Errorf("masscan at max: %+v", s)
	}
}

// TestScanVerdictsTakeTheBestSendPath: with both send paths run, each
// target is judged on the better one, named in the verdict; a tool whose
// run failed (no CPU time) leaves its CPU target missing, not met.
func TestScanVerdictsTakeTheBestSendPath(t *testing.T) {
	r := scanFixture(testbed.TargetKernel)
	for round := 1; round <= 3; round++ {
		r.Runs = append(r.Runs, ScanRun{Tool: "xdpscan-xdptx", Round: round, RateAsked: 0, SendPPS: 600000, ProbesSent: 262144,
			TruthOpen: 1000, Found: 1000, Usage: Usage{UserS: 0.2}, CPUPerMillion: 0.2 / 0.262144})
	}
	for i := range r.Runs {
		if r.Runs[i].Tool == "zmap" && r.Runs[i].RateAsked == 0 {
			r.Runs[i].Usage, r.Runs[i].CPUPerMillion = Usage{}, 0
		}
	}
	vs := map[string]Verdict{}
	for _, v := range ScanVerdicts(r) {
		vs[v.Target] = v
	}
	if v := vs["2. kernel target vs zmap"]; !v.Met || !strings.Contains(v.Got, "xdpscan --tx xdp 600000/s") {
		t.Errorf("rate verdict not on the faster send path: %+v", v)
	}
	if v := vs["2. CPU per million probes vs masscan"]; !v.Met || !strings.Contains(v.Got, "xdpscan --tx xdp 0.76 s") {
		t.Errorf("CPU verdict not on the cheaper send path: %+v", v)
	}
	if v := vs["2. CPU per million probes vs zmap"]; v.Met || v.Missing == "" {
		t.Errorf("a failed zmap run must leave the verdict missing: %+v", v)
	}
}

func TestScanVerdicts(t *testing.T) {
	byName := func(vs []Verdict) map[string]Verdict {
		m := map[string]Verdict{}
		for _, v := range vs {
			m[v.Target] = v
		}
		return m
	}
	k := byName(ScanVerdicts(scanFixture(testbed.TargetKernel)))
	if v := k["2. kernel target vs zmap"]; !v.Met || v.Value < 2.3 {
		t.Errorf("vs zmap: %+v", v)
	}
	if v := k["2. CPU per million probes vs masscan"]; !v.Met || v.Value < 0.11 || v.Value > 0.12 {
		t.Errorf("CPU vs masscan (0.5/4.4 = 0.114, at most 0.25: met): %+v", v)
	}
	if v := k["2. CPU per million probes vs zmap"]; !v.Met || v.Value < 0.17 || v.Value > 0.18 {
		t.Errorf("CPU vs zmap (0.5/2.9 = 0.172): %+v", v)
	}
	x := byName(ScanVerdicts(scanFixture(testbed.TargetXDP)))
	if v := x["1. XDP target vs bare sendmmsg loop"]; !v.Met || v.Value < 85 || v.Value > 86 {
		t.Errorf("vs sendmmsg: %+v", v)
	}
	if v := x["1. XDP target vs masscan"]; !v.Met {
		t.Errorf("vs masscan: %+v", v)
	}
	missing := scanFixture(testbed.TargetXDP)
	var kept []ScanRun
	for _, r := range missing.Runs {
		if r.Tool != "zmap" {
			kept = append(kept, r)
		}
	}
	missing.Runs = kept
	if v := byName(ScanVerdicts(missing))["1. XDP target vs zmap"]; v.Missing == "" || v.Met {
		t.Errorf("zmap skipped must be reported missing, not met: %+v", v)
	}
}

func captureFixture() *CaptureResults {
	r := &CaptureResults{Packets: 1000}
	for round := 1; round <= 3; round++ {
		r.Runs = append(r.Runs,
			CaptureRun{Tool: "none", Round: round, Sent: 1000, FloodPPS: 800000, FloodKeptPct: 100, InFile: -1},
			CaptureRun{Tool: "xdp-count", Round: round, Sent: 1000, FloodPPS: 780000, FloodKeptPct: 97.5, ReceivedBy: 1000, InFile: -1, AddedCPUNs: 50},
			CaptureRun{Tool: "xdp", Round: round, Sent: 1000, FloodPPS: 700000, FloodKeptPct: 87.5, Captured: 1000, ReceivedBy: 1000, InFile: 1000, AddedCPUNs: 300},
			CaptureRun{Tool: "tcpdump", Round: round, Sent: 1000, FloodPPS: 550000, FloodKeptPct: 68.75, Captured: 1000, ReceivedBy: 1000, InFile: 998, AddedCPUNs: 900},
		)
	}
	return r
}

func TestCaptureLostTrustsTheFileOverTheToolsWord(t *testing.T) {
	for _, s := range captureFixture().Steps() {
		want := uint64(0)
		if s.Tool == "tcpdump" {
			want = 2 // said 1000 captured, the file holds 998
		}
		if s.LostMax != want {
			t.Errorf("%s lost %d, want %d", s.Tool, s.LostMax, want)
		}
	}
}

func TestCaptureVerdicts(t *testing.T) {
	for _, v := range CaptureVerdicts(captureFixture()) {
		if !v.Met {
			t.Errorf("%s: not met: %s", v.Target, v.Got)
		}
	}
	r := captureFixture()
	r.Runs[1].FloodKeptPct, r.Runs[5].FloodKeptPct = 90, 90 // two of three rounds below 95%
	if v := CaptureVerdicts(r)[1]; v.Met || v.Target != "3. --count-only keeps the flood's rate" {
		t.Errorf("count-only at a median 90%% of the flood must not meet the 95%% target: %+v", v)
	}
	r = captureFixture()
	r.Runs[1].ReceivedBy = 999 // one packet lost in one round
	if v := CaptureVerdicts(r)[0]; v.Met || v.Target != "3. --count-only loses nothing at the top rate" {
		t.Errorf("count-only that lost a packet must not meet the target: %+v", v)
	}
	r = captureFixture()
	for i := range r.Runs {
		if r.Runs[i].Tool == "xdp-count" {
			r.Runs[i].AddedCPUNs = 300 // a third of tcpdump's 900: below it, but not a small fraction
		}
	}
	if v := CaptureVerdicts(r)[3]; v.Met || v.Target != "3. CPU per packet, xdp-count vs tcpdump" {
		t.Errorf("count-only at a third of tcpdump's CPU per packet must not meet the quarter target: %+v", v)
	}
}

func TestPlotsAreSVG(t *testing.T) {
	dir := t.TempDir()
	if err := PlotScan(filepath.Join(dir, "scan.svg"), scanFixture(testbed.TargetKernel)); err != nil {
		t.Fatal(err)
	}
	if err := PlotCapture(filepath.Join(dir, "capture.svg"), captureFixture()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scan.svg", "capture.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			XMLName xml.Name
		}
		if err := xml.Unmarshal(b, &doc); err != nil || doc.XMLName.Local != "svg" {
			t.Errorf("%s is not an SVG document: %v %v", name, doc.XMLName, err)
		}
		for _, tool := range []string{"xdpscan", "masscan", "zmap"} {
			if name == "scan.svg" && !strings.Contains(string(b), tool) {
				t.Errorf("%s has no line labelled %s", name, tool)
			}
		}
	}
	if err := PlotCapture(filepath.Join(dir, "none.svg"), &CaptureResults{}); err == nil {
		t.Error("a capture plot with no tool must be an error")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// windows builds an attach/detach sequence from receive rates (packets per
// 0.1 s window): detached, attached, detached, ...
func windows(pps ...uint64) ToggleResult {
	r := ToggleResult{Mode: "native"}
	for i, p := range pps {
		r.Windows = append(r.Windows, ToggleWindow{Attached: i%2 == 1, Packets: p / 10, Seconds: 0.1})
	}
	return r
}

func TestPairedWindowsCompareEachAttachedWindowWithItsNeighbours(t *testing.T) {
	// A drift from 2.0 to 3.0 Mpps; every attached window runs at 90% of
	// the mean of its neighbours.
	r := windows(2_000_000, 1_980_000, 2_400_000, 2_430_000, 3_000_000)
	kept := r.Kept()
	if len(kept) != 2 || math.Abs(kept[0]-90) > 0.01 || math.Abs(kept[1]-90) > 0.01 {
		t.Fatalf("kept %v, want [90 90]", kept)
	}
	var p PairedRun
	p.add(r)
	p.summarize()
	if p.Pairs != 2 || p.Mode != "native" || math.Abs(p.KeptMedianPct-90) > 0.01 {
		t.Fatalf("summary %+v", p)
	}
	// Over all windows: (1.98+2.43)/2 attached vs (2.0+2.4+3.0)/3 detached.
	if want := 100 * 2.205 / (7.4 / 3); math.Abs(p.KeptPct-want) > 0.01 {
		t.Fatalf("flood kept %.2f%%, want %.2f%%", p.KeptPct, want)
	}
}

// TestPairedIntervalHoldsTheFigureAndNarrows: floods of windows with
// noise around 95% kept; the 95% interval holds the figure and narrows as
// pairs add up, and each flood's attached windows keep their own
// neighbours.
func TestPairedIntervalHoldsTheFigureAndNarrows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	flood := func(pairs int) ToggleResult {
		pps := []uint64{2_000_000}
		for range pairs {
			base := 2_000_000 * (0.8 + 0.4*rng.Float64())
			pps = append(pps, uint64(0.95*base*(0.9+0.2*rng.Float64())), uint64(base))
		}
		return windows(pps...)
	}
	summary := func(floods, pairs int) PairedRun {
		var p PairedRun
		for range floods {
			p.add(flood(pairs))
		}
		p.summarize()
		return p
	}
	few, many := summary(1, 10), summary(3, 100)
	if many.Floods != 3 || many.Pairs != 300 || len(many.Windows) != 3*201 {
		t.Fatalf("3 floods of 100 pairs: %d floods, %d pairs, %d windows", many.Floods, many.Pairs, len(many.Windows))
	}
	for _, p := range []PairedRun{few, many} {
		if !(p.KeptLowPct < p.KeptPct && p.KeptPct < p.KeptHighPct) {
			t.Fatalf("%d pairs: interval %.2f-%.2f does not hold %.2f", p.Pairs, p.KeptLowPct, p.KeptHighPct, p.KeptPct)
		}
	}
	if wf, wm := few.KeptHighPct-few.KeptLowPct, many.KeptHighPct-many.KeptLowPct; wm > wf/3 {
		t.Fatalf("interval %.2f points wide with 300 pairs, %.2f with 10: want it narrower by sqrt(30)", wm, wf)
	}
	if math.Abs(many.KeptPct-95) > 1 || len(ToggleResult{Windows: many.Windows}.Kept()) != 300 {
		t.Fatalf("kept %.2f%% over %d windows, want ~95%% over 300", many.KeptPct, len(ToggleResult{Windows: many.Windows}.Kept()))
	}
}

func TestCaptureVerdictTakesThePairedWindows(t *testing.T) {
	r := captureFixture()
	r.Paired = []PairedRun{
		{Tool: "none", Pairs: 100, KeptPct: 99.8},
		{Tool: "xdp-pass", Pairs: 100, KeptPct: 97},
		{Tool: "xdp-count", Pairs: 100, KeptPct: 93},
	}
	v := CaptureVerdicts(r)[1]
	if v.Met || v.Value != 93 || !strings.Contains(v.Got, "100 attach/detach pairs") || !strings.Contains(v.Got, "99.8%") {
		t.Fatalf("paired windows at 93%% must decide, and not meet the target: %+v", v)
	}
	r.Paired[2].KeptPct = 96
	if v := CaptureVerdicts(r)[1]; !v.Met {
		t.Fatalf("paired windows at 96%% meet the target: %+v", v)
	}
	r.Paired[2].Error = "the flood ended before the first pair of windows"
	if v := CaptureVerdicts(r)[1]; v.Value == 96 {
		t.Fatalf("a failed paired run must not count: %+v", v)
	}
}
