package e2e

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
)

// bgCapture is a capture (xdpscan's or tcpdump's) running in a namespace
// until stopped.
type bgCapture struct {
	name   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

// tcpdump runs with --immediate-mode: without it libpcap hands packets
// over a block at a time (or after its 1 s timeout), and those of the
// last block are lost when SIGINT stops it.

// startBg starts `ip netns exec ns argv...` and waits until it prints
// ready on stderr ("listening on": tcpdump's words, which xdpscan prints
// once it is attached and its ring open).
func startBg(t *testing.T, name, ns string, argv ...string) *bgCapture {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	b := &bgCapture{name: name, cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("%s never started listening:\n%s", name, b.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b
}

// stop ends the capture with SIGINT and waits for it.
func (b *bgCapture) stop(t *testing.T) string {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", b.name, err, b.stderr.String())
	}
	return b.stderr.String()
}

// capturedFrame is one packet of a file: its bytes and, in pcapng, its
// direction (epb_flags: 1 inbound, 2 outbound; 0 unknown).
type capturedFrame struct {
	data string
	dir  int
}

// readCaptureFile reads every packet of a pcap or pcapng file.
func readCaptureFile(t *testing.T, path string) []capturedFrame {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.packet_flags_direction").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	dirs := strings.Split(strings.TrimSpace(string(out)), "\n")
	var frames []capturedFrame
	for _, f := range readPcapFrames(t, path) {
		frames = append(frames, capturedFrame{data: string(f.data)})
	}
	if len(frames) > 0 && len(dirs) == len(frames) {
		for i, d := range dirs {
			switch d {
			case "0x00000001":
				frames[i].dir = 1
			case "0x00000002":
				frames[i].dir = 2
			}
		}
	}
	return frames
}

// sameFrames compares two captures as multisets of frames (the two tools
// may order packets of the two directions differently within a
// microsecond): nil when equal, else a description of the difference.
func sameFrames(a, b []capturedFrame) (onlyA, onlyB int) {
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i] = a[i].data
	}
	for i := range b {
		bs[i] = b[i].data
	}
	slices.Sort(as)
	slices.Sort(bs)
	i, j := 0, 0
	for i < len(as) || j < len(bs) {
		switch {
		case j == len(bs) || i < len(as) && as[i] < bs[j]:
			onlyA++
			i++
		case i == len(as) || bs[j] < as[i]:
			onlyB++
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

func countDirs(frames []capturedFrame) (in, out int) {
	for _, f := range frames {
		switch f.dir {
		case 1:
			in++
		case 2:
			out++
		}
	}
	return in, out
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: `make deps` installs it", tool)
		}
	}
}

// TestCapturePingBothDirections: ping -c 5 across the testbed gives 10
// packets with -Q inout (5 requests in, 5 replies out), as tcpdump -Q
// inout records at the same time, byte for byte, with either egress hook;
// -Q in and -Q out give 5 each, as tcpdump's.
func TestCapturePingBothDirections(t *testing.T) {
	requireTools(t, "tshark", "tcpdump", "ping")
	tb := upTestbed(t, testbed.Config{})
	for _, tc := range []struct {
		q, hook string
		in, out int
	}{
		{"inout", "tcx", 5, 5},
		{"inout", "clsact", 5, 5},
		{"in", "auto", 5, 0},
		{"out", "auto", 0, 5},
	} {
		t.Run(tc.q+"/"+tc.hook, func(t *testing.T) {
			dir := t.TempDir()
			ours, theirs := filepath.Join(dir, "xdpscan.pcapng"), filepath.Join(dir, "tcpdump.pcap")
			x := startBg(t, "xdpscan", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "-Q", tc.q,
				"--egress-hook", tc.hook, "-w", ours, "--duration", "30s", "icmp")
			d := startBg(t, "tcpdump", tb.TargetNS(), "tcpdump", "-i", testbed.TargetIf, "-Q", tc.q, "--immediate-mode", "-B", "32768", "-U", "-w", theirs, "icmp")
			ping := exec.Command("ip", "netns", "exec", tb.ScanNS(), "ping", "-c", "5", "-i", "0.2", "-W", "1", "198.18.0.5")
			if out, err := ping.CombinedOutput(); err != nil {
				t.Fatalf("ping: %v\n%s", err, out)
			}
			time.Sleep(200 * time.Millisecond)
			summary := x.stop(t)
			if theirs := d.stop(t); !strings.Contains(theirs, "\n0 packets dropped by kernel") {
				t.Fatalf("tcpdump lost packets, so it is no reference for this run:\n%s", theirs)
			}
			got, want := readCaptureFile(t, ours), readCaptureFile(t, theirs)
			if n := tc.in + tc.out; len(got) != n || len(want) != n {
				t.Fatalf("xdpscan wrote %d packets, tcpdump -Q %s %d: want %d each\n%s", len(got), tc.q, len(want), n, summary)
			}
			if a, b := sameFrames(got, want); a != 0 || b != 0 {
				t.Fatalf("%d frames only in xdpscan's file, %d only in tcpdump's", a, b)
			}
			if in, out := countDirs(got); in != tc.in || out != tc.out {
				t.Fatalf("epb_flags: %d inbound, %d outbound; want %d and %d", in, out, tc.in, tc.out)
			}
			wants := []string{"matched 5, written 5"}
			if tc.hook != "auto" {
				wants = append(wants, "("+tc.hook+")")
			}
			for _, want := range wants {
				if !strings.Contains(summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, summary)
				}
			}
		})
	}
}

// TestCaptureInOutDuringScan captures on the target's side of a SYN scan
// with -Q inout: the probes and the scanner's XDP-built RSTs in, the
// SYN-ACKs and RSTs out; exactly what tcpdump -Q inout records at the same
// time, frame for frame.
func TestCaptureInOutDuringScan(t *testing.T) {
	requireTools(t, "tshark", "tcpdump")
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "xdpscan.pcapng"), filepath.Join(dir, "tcpdump.pcap")
	x := startBg(t, "xdpscan", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "-w", ours, "--duration", "60s", "tcp")
	d := startBg(t, "tcpdump", tb.TargetNS(), "tcpdump", "-i", testbed.TargetIf, "-Q", "inout", "--immediate-mode", "-B", "32768", "-U", "-w", theirs, "tcp")
	const prefix = "198.18.1.0/24"
	open, closed := truth(tb.Config, prefix)
	// At a rate a starved tcpdump keeps up with on a busy machine.
	results, _, err := runScan(t, tb, dir, prefix, "-p", scanPortsFlag, "--rate", "2000", "--wait", "1s")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkAgainstTruth(t, results, open, closed)
	time.Sleep(300 * time.Millisecond)
	summary := x.stop(t)
	theirSummary := d.stop(t)
	if !strings.Contains(theirSummary, "\n0 packets dropped by kernel") {
		t.Fatalf("tcpdump lost packets, so it is no reference for this run:\n%s", theirSummary)
	}
	got, want := readCaptureFile(t, ours), readCaptureFile(t, theirs)
	if a, b := sameFrames(got, want); a != 0 || b != 0 || len(got) != len(want) {
		t.Fatalf("xdpscan wrote %d frames, tcpdump %d: %d only in xdpscan's, %d only in tcpdump's\n%s", len(got), len(want), a, b, summary)
	}
	// Each probe in, each answer out (SYN-ACK for open, RST for closed),
	// and the scanner's RST for each SYN-ACK in.
	probes := 256 * len(scanPorts)
	in, out := countDirs(got)
	if in != probes+len(open) || out != len(open)+len(closed) {
		t.Fatalf("%d inbound, %d outbound; want %d probes + %d RSTs in, %d SYN-ACKs + %d RSTs out\n%s",
			in, out, probes, len(open), len(open), len(closed), summary)
	}
}
