package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xdpscan/xdpscan/bench"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/testbed"
)

// `bench capture --live` on the testbed's target link while a bounded
// flood from the scanner's side stands in for a busy link: a table of
// every tool against nothing attached, with intervals; every tool saw the
// traffic and the -w files hold what the tools say; the bench sent nothing.
func TestBenchCaptureLive(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	tb := upTestbed(t, testbed.Config{})
	target, err := netdev.OpenIn(tb.TargetNS(), testbed.TargetIf)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	flood := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "bench", "flood", "-i", testbed.ScanIf,
		"--dst", "198.18.0.250", "--count", "50000000")
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		flood.Process.Signal(syscall.SIGINT)
		flood.Wait()
	}()
	before, err := target.Read()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "live.json")
	b, err := exec.Command("ip", "netns", "exec", tb.TargetNS(), binary, "bench", "capture", "--live", "-i", testbed.TargetIf,
		"--duration", "15s", "--window", "300ms", "--out", out, "udp").CombinedOutput()
	if err != nil {
		t.Fatalf("bench capture --live: %v\n%s", err, b)
	}
	after, err := target.Read()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
	for _, want := range []string{"tool", "added ns/pkt", "95% interval", "none", "tcpdump", "xdp", "xdp-count"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	if d := after.Sub(before); d.TxPackets != 0 {
		t.Errorf("the target link sent %d packets during the bench: it must send nothing", d.TxPackets)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.LiveResults
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 4 {
		t.Fatalf("%d steps, want none and 3 tools", len(r.Steps))
	}
	for _, s := range r.Steps {
		if len(s.Errors) > 0 || s.Windows < 2 || s.LinkPPS <= 0 || s.CPUNs <= 0 {
			t.Errorf("%s: %d windows, %.0f link pps, %.0f ns/packet, errors %v; want 2 windows or more with traffic",
				s.Tool, s.Windows, s.LinkPPS, s.CPUNs, s.Errors)
		}
		if s.Tool == "none" {
			continue
		}
		if s.ReceivedBy == 0 || s.ReceivedBy > s.RunLink || s.AddedLowNs > s.AddedNs || s.AddedNs > s.AddedHighNs || s.KeptLowPct <= 0 {
			t.Errorf("%s: received %d of the link's %d, added %.0f ns (%.0f to %.0f), kept from %.1f%%",
				s.Tool, s.ReceivedBy, s.RunLink, s.AddedNs, s.AddedLowNs, s.AddedHighNs, s.KeptLowPct)
		}
		if s.Tool != "xdp-count" && (s.InFile <= 0 || uint64(s.InFile) != s.Captured) {
			t.Errorf("%s: said %d captured, its files held %d", s.Tool, s.Captured, s.InFile)
		}
	}
}

func TestBenchCaptureLiveBadInput(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"an interface not the testbed's, without --live", []string{"-i", "lo"}, "add --live"},
		{"--live without an interface", []string{"--live"}, "-i IFACE is required"},
		{"no such interface", []string{"--live", "-i", "xs-none0"}, "no such interface"},
		{"a window longer than a quarter", []string{"--live", "-i", "lo", "--duration", "10s", "--window", "5s"}, "at most a quarter"},
		{"an unknown tool", []string{"--live", "-i", "lo", "--tools", "wireshark"}, "unknown tool"},
		{"a filter typo", []string{"--live", "-i", "lo", "tcp", "prot", "80"}, "prot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := exec.Command(binary, append([]string{"bench", "capture"}, tc.args...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(b), tc.want) {
				t.Fatalf("exit %v, output %q; want exit 2 and %q", err, b, tc.want)
			}
		})
	}
}
