package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/internal/privs"
	"github.com/xdpscan/xdpscan/testbed"
	"github.com/xdpscan/xdpscan/transmit"
)

// The tests here run xdpscan as its users do: uid 65534 holding exactly
// the capabilities a subcommand needs, as ambient capabilities (setpriv).
// They run under whatever kernel.unprivileged_bpf_disabled is set;
// .ci/run runs them under 2 (Debian's default) and then 1.

// asNobody is the setpriv prefix that runs a command as uid and gid 65534
// with exactly caps (setpriv's names: "bpf", "net_admin", "net_raw") in
// its inheritable and ambient sets, so that they survive the exec as
// effective and permitted.
func asNobody(caps ...string) []string {
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	return []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=" + set, "--ambient-caps=" + set}
}

// nobodyDir is a directory uid 65534 can write in (t.TempDir's parent is
// private to root).
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xdpscan-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func unprivilegedBPF(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestUnprivilegedScanFindsTheTruth scans with TCP SYN, UDP and ICMP echo
// as uid 65534 with CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW only, sending
// from a socket and from XDP.
func TestUnprivilegedScanFindsTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{TargetNAPI: true, UDPOpenPorts: []uint16{53, 123, 7}, ProhibitedFrom: 230})
	t.Logf("kernel.unprivileged_bpf_disabled = %s", unprivilegedBPF(t))
	const prefix = "198.18.0.0/24"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53},
		{proto: "udp", port: 7}, {proto: "udp", port: 161}, {proto: "icmp"}}
	want := mixedTruth(tb.Config, prefix, probes)
	for _, tx := range []string{"socket", "xdp"} {
		t.Run("tx "+tx, func(t *testing.T) {
			results, st, stderr, err := runScanWrapped(t, tb, nobodyDir(t), asNobody("bpf", "net_admin", "net_raw"),
				prefix, "-p", "22,9000,U:53,U:7,U:161", "--ping", "--tx", tx, "--rate", "10000", "--wait", "1500ms")
			if err != nil {
				t.Fatalf("scan as uid 65534 with bpf, net_admin, net_raw: %v", err)
			}
			if strings.Contains(stderr, "falling back") || st.RxMode != "xdp" || st.TxMode != transmit.Mode(tx) {
				t.Fatalf("ran rx %q tx %q, want the raw path (rx xdp, tx %s):\n%s", st.RxMode, st.TxMode, tx, stderr)
			}
			checkStates(t, results, want)
			checkStats(t, st, want, 16*3)
		})
	}
	assertDetached(t, tb)
}

// TestUnprivilegedCaptureWritesExactlyTheMatches captures with CAP_BPF
// and CAP_NET_ADMIN only: an XDP capture opens no raw socket.
func TestUnprivilegedCaptureWritesExactlyTheMatches(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := nobodyDir(t)
	file := filepath.Join(dir, "out.pcapng")
	st := runCaptureWrapped(t, tb, asNobody("bpf", "net_admin"), dir, "-w", file, "udp dst port 5000")
	if st.RxMode != "xdp" || st.Written != 300 || st.Matched != 300 || st.Inbound == nil || st.Inbound.Seen != 600 || st.RingLost != 0 || st.WriterLost != 0 {
		t.Fatalf("stats %+v: want XDP, 600 seen, 300 matched and written, nothing lost", st)
	}
	if n := tsharkCount(t, file); n != 300 {
		t.Fatalf("tshark reads %d packets, want 300", n)
	}
	// libpcap's capture needs CAP_NET_RAW and nothing else.
	file = filepath.Join(dir, "base.pcapng")
	st = runCaptureWrapped(t, tb, asNobody("net_raw"), dir, "--rx", "pcap", "-w", file, "udp dst port 5000")
	if st.RxMode != "pcap" || st.Written != 300 || st.Matched != 300 {
		t.Fatalf("libpcap stats %+v: want 300 matched and written", st)
	}
	if n := tsharkCount(t, file); n != 300 {
		t.Fatalf("tshark reads %d packets in the libpcap capture, want 300", n)
	}
}

// TestUnprivilegedConnectScanNeedsNoCapability runs --connect with no
// capability at all, bounding set included.
func TestUnprivilegedConnectScanNeedsNoCapability(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.0.0/26"
	want := mixedTruth(tb.Config, prefix, []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 81}})
	wrap := append(asNobody(), "--bounding-set=-all")
	results, st, _, err := runScanWrapped(t, tb, nobodyDir(t), wrap, prefix, "-p", "22,81", "--connect", "--connect-timeout", "500ms")
	if err != nil {
		t.Fatalf("connect scan with no capability: %v", err)
	}
	if st.RxMode != "connect" {
		t.Fatalf("rx mode %q, want connect", st.RxMode)
	}
	checkStates(t, results, want)
}

// TestUnprivilegedMissingCapabilityIsNamed removes each capability a path
// needs, one at a time: the error names exactly that one, with the setcap
// line that fixes it, and exits 77 (EX_NOPERM) before anything is set up.
func TestUnprivilegedMissingCapabilityIsNamed(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := nobodyDir(t)
	scan := []string{"scan", "198.18.0.0/28", "-p", "80", "--allow", "198.18.0.0/15", "-o", filepath.Join(dir, "r.ndjson")}
	capture := []string{"capture", "-i", testbed.ScanIf, "--duration", "1s", "-w", filepath.Join(dir, "c.pcapng")}
	monitor := []string{"monitor", "-i", testbed.ScanIf, "--duration", "1s"}
	tests := []struct {
		path string
		args []string
		has  []string
		miss string
	}{
		{"scan", scan, []string{"net_admin", "net_raw"}, "CAP_BPF"},
		{"scan", scan, []string{"bpf", "net_raw"}, "CAP_NET_ADMIN"},
		{"scan", scan, []string{"bpf", "net_admin"}, "CAP_NET_RAW"},
		{"scan --tx xdp", append(scan, "--tx", "xdp"), []string{"net_admin"}, "CAP_BPF"},
		{"scan --rx pcap", append(scan, "--rx", "pcap"), []string{"bpf", "net_admin"}, "CAP_NET_RAW"},
		{"capture", capture, []string{"net_admin"}, "CAP_BPF"},
		{"capture", capture, []string{"bpf"}, "CAP_NET_ADMIN"},
		{"capture --rx pcap", append(capture, "--rx", "pcap"), []string{"bpf", "net_admin"}, "CAP_NET_RAW"},
		{"monitor", monitor, []string{"net_admin"}, "CAP_BPF"},
		{"monitor", monitor, []string{"bpf"}, "CAP_NET_ADMIN"},
	}
	for _, tc := range tests {
		t.Run(tc.path+" without "+tc.miss, func(t *testing.T) {
			cmd := exec.Command("ip", append(append([]string{"netns", "exec", tb.ScanNS()}, asNobody(tc.has...)...), append([]string{binary}, tc.args...)...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			want := fmt.Sprintf("xdpscan: %s needs %s (missing): setcap cap_bpf,cap_net_admin,cap_net_raw+ep %s, or run as root\n",
				tc.path, tc.miss, binary)
			if exitCode(err) != 77 || stderr.String() != want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 77, stderr:\n%s", exitCode(err), stderr.String(), want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
	if mode := attachedMode(t, tb); mode != "" {
		t.Errorf("something was attached (%s) although every run was refused", mode)
	}
}

// TestUnprivilegedVersionTellsWhatRuns: `xdpscan version` tries each
// subcommand's needs and answers per subcommand.
func TestUnprivilegedVersionTellsWhatRuns(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	tests := []struct {
		name string
		has  []string
		want []string
	}{
		{"all three", []string{"bpf", "net_admin", "net_raw"}, []string{"scan            yes\n", "scan --connect  yes (needs no capability)\n",
			"capture         yes\n", "monitor         yes\n"}},
		{"no net_raw", []string{"bpf", "net_admin"}, []string{"scan            no: needs CAP_NET_RAW (missing)\n",
			"capture         yes\n", "monitor         yes\n", "to run them all: setcap cap_bpf,cap_net_admin,cap_net_raw+ep " + binary + ", or run as root\n"}},
		{"none", nil, []string{"scan            no: needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF (missing)\n",
			"scan --connect  yes (needs no capability)\n", "capture         no: needs CAP_NET_ADMIN, CAP_BPF (missing)\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("ip", append(append([]string{"netns", "exec", tb.ScanNS()}, asNobody(tc.has...)...), binary, "version")...).CombinedOutput()
			if err != nil {
				t.Fatalf("version: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("version lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// threadsOf waits until every thread of pid has no_new_privs (the last
// step of the drop after setup) and returns their credentials.
func threadsOf(t *testing.T, pid int, stderr fmt.Stringer) []privs.Thread {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		threads, err := privs.Threads(pid)
		if err != nil {
			t.Fatalf("read threads of %d: %v\n%s", pid, err, stderr.String())
		}
		all := len(threads) > 0
		for _, th := range threads {
			all = all && th.NoNewPrivs
		}
		if all {
			// Let a drop still going on settle, then read for good.
			time.Sleep(200 * time.Millisecond)
			threads, err = privs.Threads(pid)
			if err != nil {
				t.Fatal(err)
			}
			return threads
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			t.Fatalf("xdpscan exited before it dropped its privileges: %+v\n%s", threads, stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no_new_privs never set on every thread of %d: %+v\n%s", pid, threads, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCapabilitiesAfterSetup reads every thread's credentials from
// /proc/PID/task/*/status while a scan (slow: 64 probes at 20/s) and a
// capture run (and a monitor): after setup each holds no capability, nothing inheritable
// or ambient, no_new_privs; root's bounding set is empty, while uid 65534
// (no CAP_SETPCAP) cannot drop it and keeps what it started with. With
// -Z nobody the IDs are switched and the outputs belong to nobody.
// The runs then finish normally and detach.
func TestCapabilitiesAfterSetup(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	self, err := privs.Current()
	if err != nil {
		t.Fatal(err)
	}
	root := [4]int{0, 0, 0, 0}
	nobody := [4]int{65534, 65534, 65534, 65534}
	tests := []struct {
		name    string
		cmd     string
		wrap    []string
		extra   []string
		ids     [4]int
		groups  string // "-": as the process started (root's)
		bnd     privs.Set
		ownedBy int // -1: no output file
	}{
		{"scan as root", "scan", nil, nil, root, "-", 0, 0},
		{"scan as uid 65534 with ambient caps", "scan", asNobody("bpf", "net_admin", "net_raw"), nil, nobody, "", self.Bnd, 65534},
		{"scan as root -Z nobody", "scan", nil, []string{"-Z", "nobody"}, nobody, "65534", 0, 65534},
		{"capture as root", "capture", nil, nil, root, "-", 0, 0},
		{"capture as uid 65534 with ambient caps", "capture", asNobody("bpf", "net_admin"), nil, nobody, "", self.Bnd, 65534},
		{"capture as root --user nobody", "capture", nil, []string{"--user", "nobody"}, nobody, "65534", 0, 65534},
		{"monitor as root -Z nobody", "monitor", nil, []string{"-Z", "nobody"}, nobody, "65534", 0, -1},
		{"monitor as uid 65534 with ambient caps", "monitor", asNobody("bpf", "net_admin"), nil, nobody, "", self.Bnd, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := nobodyDir(t)
			out := filepath.Join(dir, "out")
			var args []string
			if tc.cmd == "scan" {
				args = []string{"scan", "198.18.0.0/26", "-p", "80", "--allow", "198.18.0.0/15", "--rate", "20", "--wait", "500ms",
					"--status", "none", "-o", out}
			} else if tc.cmd == "capture" {
				args = []string{"capture", "-i", testbed.ScanIf, "--duration", "2s", "-w", out}
			} else {
				args = []string{"monitor", "-i", testbed.ScanIf, "--duration", "2s"}
			}
			full := append(append([]string{"netns", "exec", tb.ScanNS()}, tc.wrap...), append(append([]string{binary}, args...), tc.extra...)...)
			cmd := exec.Command("ip", full...)
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			threads := threadsOf(t, cmd.Process.Pid, &stderr)
			if len(threads) < 3 {
				t.Errorf("%d threads: the check means something with several", len(threads))
			}
			for _, th := range threads {
				want := privs.Thread{TID: th.TID, Bnd: tc.bnd, NoNewPrivs: true, UID: tc.ids, GID: tc.ids, Groups: tc.groups}
				if tc.groups == "-" {
					want.Groups = self.Groups
				}
				if th != want {
					t.Errorf("thread %d:\n got %+v\nwant %+v", th.TID, th, want)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%s: %v\n%s", tc.cmd, err, stderr.String())
			}
			if tc.ownedBy >= 0 {
				var st syscall.Stat_t
				if err := syscall.Stat(out, &st); err != nil {
					t.Fatal(err)
				}
				if int(st.Uid) != tc.ownedBy || int(st.Gid) != tc.ownedBy {
					t.Errorf("%s owned by %d:%d, want %d", out, st.Uid, st.Gid, tc.ownedBy)
				}
			}
			if tc.cmd == "scan" {
				open, closed := 0, 0
				f, _ := os.Open(out)
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					open += strings.Count(sc.Text(), `"state":"open"`)
					closed += strings.Count(sc.Text(), `"state":"closed"`)
				}
				f.Close()
				wantOpen, wantClosed := truth(tb.Config, "198.18.0.0/26")
				if open != len(onPort(wantOpen, 80)) || closed != len(onPort(wantClosed, 80)) {
					t.Errorf("after the drop the scan found %d open, %d closed; truth %d, %d", open, closed,
						len(onPort(wantOpen, 80)), len(onPort(wantClosed, 80)))
				}
			}
			assertDetached(t, tb)
		})
	}
}

func onPort(m map[pair]bool, port uint16) map[pair]bool {
	out := map[pair]bool{}
	for p := range m {
		if p.port == port {
			out[p] = true
		}
	}
	return out
}

// TestUnprivilegedSetcapLineWorks applies the setcap line `xdpscan
// version` prints to a copy of the binary, then scans as uid 65534 with no
// capability of its own: the file's capabilities are enough.
func TestUnprivilegedSetcapLineWorks(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := nobodyDir(t)
	bin := filepath.Join(dir, "xdpscan")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("ip", append(append([]string{"netns", "exec", tb.ScanNS()}, asNobody()...), append([]string{bin}, args...)...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("version")
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^to run them all: setcap (\S+) (\S+), or run as root$`).FindStringSubmatch(out)
	if m == nil || m[2] != bin {
		t.Fatalf("no setcap line for %s in:\n%s", bin, out)
	}
	if out, err := exec.Command("setcap", m[1], bin).CombinedOutput(); err != nil {
		t.Fatalf("setcap %s %s: %v\n%s", m[1], bin, err, out)
	}
	out, err = run("version")
	for _, want := range []string{"scan            yes\n", "capture         yes\n", "monitor         yes\n"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("after setcap, version lacks %q (%v):\n%s", want, err, out)
		}
	}
	const prefix = "198.18.0.0/25"
	results := filepath.Join(dir, "r.ndjson")
	out, err = run("scan", prefix, "-p", "22,81", "--allow", "198.18.0.0/15", "--status", "none", "-o", results)
	if err != nil || strings.Contains(out, "falling back") {
		t.Fatalf("scan with the file's capabilities: %v\n%s", err, out)
	}
	checkStates(t, readNDJSON(t, results), mixedTruth(tb.Config, prefix, []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 81}}))
}

// TestUserFlagBadInput: -Z with an unknown user, or without root, is bad
// input (exit status 2) refused before anything is set up.
func TestUserFlagBadInput(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	tests := []struct {
		name string
		wrap []string
		args []string
		want string
	}{
		{"unknown user", nil, []string{"scan", "198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "-Z", "no-such-user-xdpscan"},
			`xdpscan: scan: -Z: no such user "no-such-user-xdpscan" (see /etc/passwd)` + "\n"},
		{"not root", asNobody("bpf", "net_admin"), []string{"capture", "-i", testbed.ScanIf, "--user", "nobody"},
			"xdpscan: capture: -Z nobody: switching user needs root (this process runs as uid 65534)\n"},
		{"monitor, unknown user", nil, []string{"monitor", "-i", testbed.ScanIf, "-Z", "no-such-user-xdpscan"},
			`xdpscan: monitor: -Z: no such user "no-such-user-xdpscan" (see /etc/passwd)` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("ip", append(append([]string{"netns", "exec", tb.ScanNS()}, tc.wrap...), append([]string{binary}, tc.args...)...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if exitCode(err) != 2 || stderr.String() != tc.want {
				t.Errorf("exit %d, stderr %q; want exit 2, %q", exitCode(err), stderr.String(), tc.want)
			}
		})
	}
	if mode := attachedMode(t, tb); mode != "" {
		t.Errorf("something was attached (%s)", mode)
	}
}
