package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/testbed"
)

// liveCapture is `xdpscan capture` running in the target's namespace.
type liveCapture struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	stats  string
}

// startLiveCapture starts capture on the target's interface with args,
// its stdout going to stdout (nil: discarded), and waits until its
// program is attached.
func startLiveCapture(t *testing.T, tb *testbed.Testbed, stdout io.Writer, args ...string) *liveCapture {
	t.Helper()
	return startLiveCaptureAs(t, tb, nil, stdout, args...)
}

// startLiveCaptureAs is startLiveCapture with the binary started through
// wrap (asNobody...).
func startLiveCaptureAs(t *testing.T, tb *testbed.Testbed, wrap []string, stdout io.Writer, args ...string) *liveCapture {
	t.Helper()
	dir := t.TempDir()
	if wrap != nil {
		dir = nobodyDir(t)
	}
	stats := filepath.Join(dir, "stats.json")
	full := append(append(append([]string{"netns", "exec", tb.TargetNS()}, wrap...), binary, "capture", "-i", testbed.TargetIf,
		"--duration", "30s", "--stats-json", stats), args...)
	lc := &liveCapture{cmd: exec.Command("ip", full...), stderr: &lockedBuffer{}, stats: stats}
	lc.cmd.Stdout, lc.cmd.Stderr = stdout, lc.stderr
	if err := lc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Printed once the programs are attached (XDP, or TC for -Q out).
		if strings.Contains(lc.stderr.String(), "listening on") {
			return lc
		}
		if time.Now().After(deadline) {
			lc.cmd.Process.Kill()
			lc.cmd.Wait()
			t.Fatalf("capture never attached:\n%s", lc.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the capture as Ctrl-C does (if it has not ended by itself)
// and reads its --stats-json.
func (lc *liveCapture) stop(t *testing.T) capture.Stats {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	lc.cmd.Process.Signal(syscall.SIGINT)
	if err := lc.cmd.Wait(); err != nil {
		t.Fatalf("capture: %v\n%s", err, lc.stderr.String())
	}
	var st capture.Stats
	b, err := os.ReadFile(lc.stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCaptureTextThroughAPipe: without -w the packets are text on stdout
// even when it is a pipe, so `capture | grep` finds them; the text is
// tcpdump's for the same packets (--print -w FILE, then tcpdump -nn -r
// FILE); -w - still pipes a pcapng tshark reads; and -c counts written
// packets, calling the rest "not written: count reached", never lost.
func TestCaptureTextThroughAPipe(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	t.Run("capture | grep", func(t *testing.T) {
		grep := exec.Command("grep", "-c", `^[0-9:.]* IP 198\.19\.0\.1\.33000 > 198\.18\.6\.[0-9]*\.5000: UDP, length 18$`)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var out lockedBuffer
		grep.Stdin, grep.Stdout = r, &out
		if err := grep.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		lc := startLiveCapture(t, tb, w, "-nn", "udp")
		w.Close()
		sendFrames(t, tb, knownTraffic())
		st := lc.stop(t)
		grep.Wait()
		if n, _ := strconv.Atoi(strings.TrimSpace(out.String())); n != 300 || st.Written != 500 {
			t.Fatalf("grep counted %q lines of the 300 UDP packets to port 5000 (capture wrote %d of 500):\n%s", out.String(), st.Written, lc.stderr.String())
		}
	})
	t.Run("the text is tcpdump's", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "out.pcapng")
		var out lockedBuffer
		lc := startLiveCapture(t, tb, &out, "-Q", "in", "--print", "-w", file, "-v", "tcp")
		sendFrames(t, tb, knownTraffic())
		if st := lc.stop(t); st.Written != 100 {
			t.Fatalf("wrote %d TCP packets, want 100", st.Written)
		}
		want, err := exec.Command("tcpdump", "-nn", "-v", "-r", file).Output()
		if err != nil {
			t.Fatalf("tcpdump -r: %v", err)
		}
		if out.String() != string(want) {
			t.Fatalf("capture --print:\n%s\ntcpdump -nn -v -r of its file:\n%s", head(out.String(), 6), head(string(want), 6))
		}
	})
	t.Run("-w - | tshark -r -", func(t *testing.T) {
		tshark := exec.Command("tshark", "-r", "-", "-T", "fields", "-e", "udp.dstport")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var out lockedBuffer
		tshark.Stdin, tshark.Stdout = r, &out
		if err := tshark.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		lc := startLiveCapture(t, tb, w, "-w", "-", "udp dst port 6000")
		w.Close()
		sendFrames(t, tb, knownTraffic())
		lc.stop(t)
		if err := tshark.Wait(); err != nil {
			t.Fatalf("tshark: %v", err)
		}
		if f := strings.Fields(out.String()); len(f) != 200 || f[0] != "6000" {
			t.Fatalf("tshark read %d packets from the pipe, want 200 to port 6000", len(f))
		}
	})
	t.Run("-B -U -l --print", func(t *testing.T) {
		// A 64 KiB ring (a page at a time is sent: 20 µs apart, well within it),
		// the file flushed per packet, the text per line.
		file := filepath.Join(t.TempDir(), "out.pcap")
		var out lockedBuffer
		lc := startLiveCapture(t, tb, &out, "-B", "64", "-U", "-l", "--print", "-w", file, "udp")
		sendFrames(t, tb, knownTraffic())
		st := lc.stop(t)
		if lines := strings.Count(out.String(), "\n"); lines != 500 || st.Written != 500 || st.RingLost != 0 || tsharkCount(t, file) != 500 {
			t.Fatalf("%d lines, stats %+v, tshark reads %d: want 500 everywhere, nothing lost", lines, st, tsharkCount(t, file))
		}
	})
	t.Run("-c counts written packets", func(t *testing.T) {
		var out lockedBuffer
		lc := startLiveCapture(t, tb, &out, "-c", "10", "--immediate-mode", "udp")
		sendFrames(t, tb, knownTraffic())
		st := lc.stop(t)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 10 || st.Written != 10 || st.WriterLost != 0 || st.NotWritten != st.Matched-10 {
			t.Fatalf("-c 10: %d lines, stats %+v: want 10 written, the rest not written (count reached), none lost", len(lines), st)
		}
		for _, want := range []string{"10 packets captured\n", "packets received by filter\n", "packets dropped by kernel\n", "not written: count reached"} {
			if !strings.Contains(lc.stderr.String(), want) {
				t.Fatalf("summary lacks %q:\n%s", want, lc.stderr.String())
			}
		}
	})
}

func head(s string, n int) string {
	l := strings.SplitN(s, "\n", n+1)
	return strings.Join(l[:min(n, len(l))], "\n")
}

var promiscuity = regexp.MustCompile(`promiscuity (\d+)`)

// promiscuityOf is the target interface's promiscuity count (ip -d link).
func promiscuityOf(t *testing.T, tb *testbed.Testbed) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", tb.TargetNS(), "-d", "link", "show", testbed.TargetIf).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := promiscuity.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no promiscuity in `ip -d link`:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestCapturePromiscuousByDefault: frames to a MAC that is not the
// interface's are captured by default (the interface is promiscuous while
// the capture runs, `ip -d link` says so) and not with -p; after SIGKILL
// the interface is promiscuous no more.
func TestCapturePromiscuousByDefault(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	other := net.HardwareAddr{0x02, 0x58, 0x53, 0, 0, 0x99}
	var frames [][]byte
	for i := range 60 {
		dst := testbed.TargetMAC
		if i%2 == 1 {
			dst = other
		}
		frames = append(frames, testpkt.Build(testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: dst, Src: testbed.ScanIP,
			Dst: netip.AddrFrom4([4]byte{198, 18, 7, byte(i)}), L4: &layers.UDP{SrcPort: 33000, DstPort: 7777}, Payload: make([]byte, 8)}))
	}
	if n := promiscuityOf(t, tb); n != 0 {
		t.Fatalf("promiscuity %d before any capture", n)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		promisc int
		want    uint64
	}{
		{"default: promiscuous", nil, 1, 60},
		{"-p", []string{"-p"}, 0, 30},
		// The target answers the 30 frames to its MAC with port
		// unreachables, which -p must keep (they are sent, not received).
		{"-p keeps what is sent", []string{"-p", "-Q", "out", "icmp"}, 0, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--count-only")
			if !strings.Contains(tc.name, "sent") {
				args = append(args, "udp port 7777")
			}
			lc := startLiveCapture(t, tb, nil, args...)
			if n := promiscuityOf(t, tb); n != tc.promisc {
				lc.stop(t)
				t.Fatalf("promiscuity %d while capturing, want %d", n, tc.promisc)
			}
			sendFrames(t, tb, frames)
			st := lc.stop(t)
			if st.Matched != tc.want {
				t.Fatalf("matched %d of 30 frames to the interface's MAC and 30 to %s, want %d", st.Matched, other, tc.want)
			}
			if n := promiscuityOf(t, tb); n != 0 {
				t.Fatalf("promiscuity %d after the capture ended", n)
			}
		})
	}
	// Promiscuous mode is the one thing capture does with CAP_NET_RAW:
	// as uid 65534 with it, the interface is promiscuous; without it, the
	// capture runs all the same and says it is not.
	t.Run("unprivileged", func(t *testing.T) {
		lc := startLiveCaptureAs(t, tb, asNobody("bpf", "net_admin", "net_raw"), nil, "--count-only", "udp")
		n := promiscuityOf(t, tb)
		sendFrames(t, tb, knownTraffic())
		time.Sleep(300 * time.Millisecond)
		st := lc.stop(t)
		if n != 1 {
			t.Fatalf("as uid 65534 with CAP_NET_RAW: promiscuity %d, want 1", n)
		}
		// --mode auto on veth: at tcx ingress, counted by protocol there.
		if st.Matched != 500 || st.Counters.UDP != 500 || st.Inbound == nil || !strings.Contains(st.Inbound.Hook, "tcx ingress (--mode auto") {
			t.Fatalf("as uid 65534 with CAP_NET_RAW: %+v, want 500 UDP matched at tcx ingress", st)
		}
		lc = startLiveCaptureAs(t, tb, asNobody("bpf", "net_admin"), nil, "--count-only", "udp")
		n = promiscuityOf(t, tb)
		lc.stop(t)
		if n != 0 || !strings.Contains(lc.stderr.String(), "not promiscuous") {
			t.Fatalf("without CAP_NET_RAW: promiscuity %d, stderr:\n%s\nwant 0 and a notice", n, lc.stderr.String())
		}
	})
	t.Run("SIGKILL", func(t *testing.T) {
		lc := startLiveCapture(t, tb, nil, "--count-only", "udp")
		if n := promiscuityOf(t, tb); n != 1 {
			t.Fatalf("promiscuity %d while capturing, want 1", n)
		}
		lc.cmd.Process.Kill()
		lc.cmd.Wait()
		deadline := time.Now().Add(2 * time.Second)
		for promiscuityOf(t, tb) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the interface is still promiscuous 2s after the capture was killed")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// --mode auto on veth: its tcx links go with the process too.
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			for tcxPrograms(t, tb.TargetNS(), testbed.TargetIf, at) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("a program is still on %s's tcx %s 2s after the capture was killed", testbed.TargetIf, at)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
}

// TestCaptureListsInterfaces: -D lists every interface `ip link` knows,
// with tcpdump's state words, the XDP modes its driver supports (veth:
// native too; the netdev family's xdp-features) and the program attached.
func TestCaptureListsInterfaces(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	list := func() string {
		out, err := exec.Command("ip", "netns", "exec", tb.TargetNS(), binary, "capture", "-D").CombinedOutput()
		if err != nil {
			t.Fatalf("capture -D: %v\n%s", err, out)
		}
		return string(out)
	}
	idle := list()
	names, err := exec.Command("ip", "-n", tb.TargetNS(), "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(names)), "\n") {
		name := strings.TrimSuffix(strings.Fields(l)[1], ":")
		name, _, _ = strings.Cut(name, "@")
		if !regexp.MustCompile(`(?m)^\d+\.` + regexp.QuoteMeta(name) + ` \[`).MatchString(idle) {
			t.Errorf("-D lacks %s:\n%s", name, idle)
		}
	}
	// Running follows the carrier, which the scan end brings up a moment later.
	veth := regexp.MustCompile(`(?m)^\d+\.xs-tgt \[Up(?:, Running)?\] ifindex \d+, veth, XDP: native, generic; attached: (.*)$`)
	if m := veth.FindStringSubmatch(idle); m == nil || m[1] != "none" {
		t.Fatalf("-D with nothing attached:\n%s", idle)
	}
	// generic: --mode auto on veth takes received packets at TC ingress.
	lc := startLiveCapture(t, tb, nil, "--mode", "generic", "--count-only", "udp")
	busy := list()
	st := lc.stop(t)
	m := veth.FindStringSubmatch(busy)
	if m == nil || !regexp.MustCompile(`^prog \d+ \(`+st.XDPMode+`\)$`).MatchString(m[1]) {
		t.Fatalf("-D during a capture (XDP %s):\n%s", st.XDPMode, busy)
	}
}
