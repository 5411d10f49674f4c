package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/bench"
	"github.com/xdpscan/xdpscan/testbed"
)

// A small `xdpscan bench scan` on the XDP target: every tool runs for real,
// xdpscan finds exactly the truth, and the table, JSON and plot appear.
func TestBenchScanSmall(t *testing.T) {
	requireRoot(t)
	out := t.TempDir()
	cmd := exec.Command(binary, "bench", "scan", "--runs", "1", "--probes", "4096", "--rates", "max", "--target", "xdp",
		"--memory=false", "--wait", "1s", "--out", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench scan: %v\n%s", err, b)
	}
	res := readResults(t, out)
	s := res.Scans["xdp"]
	if s == nil {
		t.Fatalf("results.json has no xdp scan:\n%s", b)
	}
	ran := map[string]bool{}
	for _, r := range s.Runs {
		ran[r.Tool] = true
		if r.Error != "" {
			t.Errorf("%s: %s", r.Tool, r.Error)
		}
		if r.Tool == "xdpscan" && (r.Found != r.TruthOpen || r.FalsePos != 0 || r.ProbesSent != 4096 || r.SendPPS <= 0) {
			t.Errorf("xdpscan: %+v", r)
		}
		if r.Tool != "sendmmsg" && r.Found == 0 {
			t.Errorf("%s found nothing: %+v", r.Tool, r)
		}
		if r.Usage.CPUS() <= 0 || r.Usage.PeakRSSMB <= 1 {
			t.Errorf("%s: no usage measured: %+v", r.Tool, r.Usage)
		}
	}
	for _, tool := range bench.ScanTools {
		if _, skipped := s.Skipped[tool]; !ran[tool] && !skipped {
			t.Errorf("%s neither ran nor was reported skipped", tool)
		}
	}
	if len(res.Verdicts) == 0 || !strings.Contains(string(b), "targets (ratios from this run)") {
		t.Errorf("no targets judged:\n%s", b)
	}
	assertSVG(t, filepath.Join(out, "scan.svg"))
}

// A small `xdpscan bench capture`: every capture sees the whole flood and
// the files hold what the tools say they wrote.
// Both flood generators: frames from XDP (the default) and skbs from an
// AF_PACKET socket.
func TestBenchCaptureSmall(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"xdp generator, every tool", []string{"--pairs", "3"}},
		{"socket generator", []string{"--gen", "socket", "--tools", "xdp-count,xdp,tcpdump", "--pairs", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) { benchCaptureSmall(t, tc.args) })
	}
}

func benchCaptureSmall(t *testing.T, extra []string) {
	out := t.TempDir()
	args := append([]string{"bench", "capture", "--runs", "1", "--packets", "20000", "--out", out}, extra...)
	b, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bench capture: %v\n%s", err, b)
	}
	c := readResults(t, out).Capture
	if c == nil || len(c.Runs) == 0 {
		t.Fatalf("results.json has no capture:\n%s", b)
	}
	for _, r := range c.Runs {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Tool, r.Error)
			continue
		}
		if r.Sent != 20000 || r.ReachedStack != 20000 {
			t.Errorf("%s: sent %d, reached the target's stack %d, want 20000 each", r.Tool, r.Sent, r.ReachedStack)
		}
		switch r.Tool {
		case "xdp-count":
			if r.ReceivedBy != 20000 {
				t.Errorf("count-only counted %d of 20000", r.ReceivedBy)
			}
		case "xdp", "pcap":
			if r.InFile != 20000 || r.Captured != 20000 {
				t.Errorf("%s: captured %d, file holds %d, want 20000", r.Tool, r.Captured, r.InFile)
			}
		case "tcpdump":
			if r.InFile <= 0 || uint64(r.InFile) != r.Captured {
				t.Errorf("tcpdump: said %d captured, file holds %d", r.Captured, r.InFile)
			}
		}
	}
	assertSVG(t, filepath.Join(out, "capture.svg"))
	wantPaired := 0
	if slices.Contains(extra, "3") {
		wantPaired = 3 // none, xdp-pass, xdp-count
	}
	if len(c.Paired) != wantPaired {
		t.Fatalf("%d attach/detach runs, want %d", len(c.Paired), wantPaired)
	}
	for _, p := range c.Paired {
		if p.Error != "" || p.Pairs != 3 || len(p.Windows) != 7 || p.DetachedPPS <= 0 || p.AttachedPPS <= 0 {
			t.Errorf("%s: %d pairs, %d windows, detached %.0f pps, attached %.0f pps, error %q; want 3 pairs in 7 windows with traffic",
				p.Tool, p.Pairs, len(p.Windows), p.DetachedPPS, p.AttachedPPS, p.Error)
		}
		if wantMode := map[string]string{"none": "none"}[p.Tool]; wantMode != "" && p.Mode != wantMode {
			t.Errorf("%s: attached in mode %q", p.Tool, p.Mode)
		}
	}
}

func TestBenchBadInput(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"flood outside the benchmarking range", []string{"bench", "flood", "-i", "lo", "--dst", "8.8.8.8", "--count", "1"}, "198.18.0.0/15"},
		{"unbounded flood", []string{"bench", "flood", "-i", "lo", "--dst", "198.18.0.1", "--count", "0"}, "bounded"},
		{"unknown target", []string{"bench", "scan", "--target", "nic"}, "kernel, xdp or both"},
		{"unknown tool", []string{"bench", "capture", "--tools", "wireshark"}, "unknown tool"},
		{"unknown generator", []string{"bench", "capture", "--gen", "trafgen"}, "use xdp or socket"},
		{"unknown flood generator", []string{"bench", "flood", "-i", "lo", "--dst", "198.18.0.1", "--count", "1", "--gen", "pktgen"}, "use socket or xdp"},
		{"bad rate", []string{"bench", "scan", "--rates", "fast"}, "not a rate"},
		{"no subcommand", []string{"bench"}, "say scan, capture, flood, xdp-pass or xdp-toggle"},
		{"too many pairs", []string{"bench", "capture", "--pairs", "5000"}, "use 0 to 1000"},
		{"toggle without a program", []string{"bench", "xdp-toggle", "-i", "lo"}, "use none, pass or count-only"},
		{"toggle with a zero window", []string{"bench", "xdp-toggle", "-i", "lo", "--program", "pass", "--window", "0s"}, "use 10ms to 10s"},
		{"toggle without an interface", []string{"bench", "xdp-toggle", "--program", "pass"}, "-i IFACE is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := exec.Command(binary, tt.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(b), tt.want) {
				t.Fatalf("exit %v, output %q; want exit 2 and %q", err, b, tt.want)
			}
		})
	}
}

func readResults(t *testing.T, dir string) *bench.Results {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	return &r
}

func assertSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<svg") {
		t.Fatalf("%s is not an SVG", path)
	}
}

// An XDP flood into a veth end without NAPI (GRO off, no XDP program) is
// dropped whole by the kernel, which tells BPF_PROG_RUN nothing: the flood
// must say so, not report frames sent.
func TestBenchFloodXDPNeedsNAPI(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "bench", "flood", "--gen", "xdp",
		"-i", testbed.ScanIf, "--dst", "198.18.0.250", "--count", "1000").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the veth peer took 0 of 1000 frames") {
		t.Fatalf("flood into a peer without NAPI: %v\n%s", err, out)
	}
}
