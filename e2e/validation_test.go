package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/testbed"
)

// bareNetns makes a network namespace with only lo (up) and a dummy
// veth pair vd0/vd1 (down, both ends inside), and removes it when the test ends. A command
// wrongly accepted there has no route anywhere: a validation gap cannot
// send a probe.
func bareNetns(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	ns := fmt.Sprintf("e2e-val-%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "vd0", "type", "veth", "peer", "name", "vd1"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "delete", ns).Run()
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", ns, err, out)
		}
	})
	return ns
}

// treeState is every file under a directory: its mode, size and content
// hash, so a test sees any file created, removed or changed.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			entry += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		state[path] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func treeDiff(before, after map[string]string) []string {
	var diffs []string
	for p, a := range after {
		if b, ok := before[p]; !ok {
			diffs = append(diffs, "created "+p)
		} else if a != b {
			diffs = append(diffs, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diffs = append(diffs, "removed "+p)
		}
	}
	return diffs
}

// TestBadFlagValues runs the binary on every bad value issue 24 found
// accepted, or refused too late: each must end with its exact error and
// exit status 2 before any work, leaving the working directory as it was.
func TestBadFlagValues(t *testing.T) {
	ns := bareNetns(t)
	dir := t.TempDir()
	// Files a wrong run would replace, and a target file with a 2.2 MB line.
	for name, content := range map[string]string{
		"out.ndjson": `{"ip":"198.18.0.1","port":80,"proto":"tcp","status":"open"}` + "\n",
		"stats.json": "{}\n",
		"big.txt":    "198.18.0.1\n" + strings.Repeat("1", 2200000) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "statsdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "victim.json")
	if err := os.WriteFile(victim, []byte(`{"config":{"name":"victim"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// From /run/xdpscan, testbed-x/../../.. is /: this name is the victim.
	evil := "x/../../.." + strings.TrimSuffix(victim, ".json")
	if got := filepath.Clean(testbed.StatePath(evil)); got != victim {
		t.Fatalf("the test's premise is wrong: StatePath(%q) = %s", evil, got)
	}
	missing := fmt.Sprintf("vd-none-%d", os.Getpid())
	const nameRule = "is not allowed; use lower-case letters, digits and '-' (not first)"

	scanArgs := []string{"scan", "198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "-o", "out.ndjson"}
	scan := func(extra ...string) []string { return append(append([]string{}, scanArgs...), extra...) }
	tests := []struct {
		name   string
		inNS   bool // run inside the bare namespace (scan, capture, monitor)
		args   []string
		want   string // the whole of stderr
		status int
	}{
		{"rate NaN", true, scan("--rate", "NaN"),
			"--rate NaN: must be a number of probes per second from 0.000278 (one an hour) up", 2},
		{"rate 1e-12", true, scan("--rate", "1e-12"),
			"--rate 1e-12: must be a number of probes per second from 0.000278 (one an hour) up", 2},
		{"rate below one an hour", true, scan("--rate", "0.0002"),
			"--rate 0.0002: must be a number of probes per second from 0.000278 (one an hour) up", 2},
		{"rate infinite", true, scan("--rate", "Inf"),
			"--rate +Inf: must be a number of probes per second from 0.000278 (one an hour) up", 2},
		{"status bogus", true, scan("--status", "bogus"),
			`--status "bogus": use auto (text on a terminal), text, json or none`, 2},
		{"source port list", true, scan("--source-port", "40000-40000,1"),
			`--source-port "40000-40000,1": give one range LO-HI (or one port), not a list`, 2},
		{"source port reversed", true, scan("--source-port", "40255-40000"),
			`--source-port: port range "40255-40000" is reversed; did you mean 40000-40255?`, 2},
		{"target line too long", true, scan("-iL", "big.txt"),
			"big.txt:2: line longer than 65536 bytes: put one target (or a few) per line", 2},
		{"router MAC broadcast", true, scan("--router-mac", "ff:ff:ff:ff:ff:ff"),
			"--router-mac ff:ff:ff:ff:ff:ff: a broadcast or multicast address is no next hop; give the router's unicast MAC (ip neigh)", 2},
		{"router MAC multicast", true, scan("--router-mac", "01:00:5e:00:00:01"),
			"--router-mac 01:00:5e:00:00:01: a broadcast or multicast address is no next hop; give the router's unicast MAC (ip neigh)", 2},
		{"router MAC zero", true, scan("--router-mac", "00:00:00:00:00:00"),
			"--router-mac 00:00:00:00:00:00: the zero address is no next hop; give the router's MAC (ip neigh)", 2},
		{"wait negative", true, scan("--wait", "-1s"), "--wait -1s: must be 0 or more", 2},
		{"connect timeout zero", true, scan("--connect-timeout", "0s"), "--connect-timeout 0s: must be positive", 2},
		{"retries negative", true, scan("--retries", "-1"), "--retries -1: must be 0 or more", 2},
		{"workers negative", true, scan("--workers", "-5"), "--workers -5: must be 0 (the default) or more", 2},
		{"stats-json is a directory", true, scan("--stats-json", "statsdir"),
			"--stats-json statsdir: cannot write: statsdir is a directory: name a file", 2},
		{"capture duration negative", true, []string{"capture", "-i", "lo", "--duration", "-1s"},
			"capture: --duration -1s: must be positive (0, the default: until Ctrl-C or -c)", 2},
		{"capture count-only with -w", true, []string{"capture", "-i", "lo", "--count-only", "-w", "f.pcapng"},
			"capture: --count-only copies no packet, so -w f.pcapng would stay empty: drop one of them", 2},
		{"capture stats-json is a directory", true, []string{"capture", "-i", "lo", "-w", "f.pcapng", "--stats-json", "statsdir"},
			"capture: --stats-json statsdir: cannot write: statsdir is a directory: name a file", 2},
		{"capture on a down interface", true, []string{"capture", "-i", "vd0", "-w", "f.pcapng"},
			"capture: interface vd0 is down: bring it up first (ip link set dev vd0 up)", 2},
		{"monitor on a down interface", true, []string{"monitor", "-i", "vd0"},
			"monitor: interface vd0 is down: bring it up first (ip link set dev vd0 up)", 2},
		{"scan on a down interface", true, scan("-i", "vd0", "--router-mac", "02:00:00:00:00:01"),
			"interface vd0 is down: bring it up first (ip link set dev vd0 up)", 2},
		{"monitor duration negative", true, []string{"monitor", "-i", "lo", "--duration", "-1s"},
			"monitor: --duration -1s: must be positive (0, the default: until Ctrl-C)", 2},
		{"bench rates NaN", false, []string{"bench", "scan", "--rates", "NaN"},
			`bench scan: --rates: "NaN" is not a rate (100 to 100000000 per second, or max)`, 2},
		{"bench wait negative", false, []string{"bench", "scan", "--wait", "-1s"}, "bench scan: --wait -1s: use 0 to 1m", 2},
		{"testbed down path traversal", false, []string{"testbed", "down", "--name", evil},
			fmt.Sprintf("testbed down: --name: testbed name %q: byte 2 ('/') %s", evil, nameRule), 2},
		{"testbed status path traversal", false, []string{"testbed", "status", "--name", evil},
			fmt.Sprintf("testbed status: --name: testbed name %q: byte 2 ('/') %s", evil, nameRule), 2},
		{"testbed up newline", false, []string{"testbed", "up", "--name", "vd\nx"},
			fmt.Sprintf("testbed up: --name: testbed name %q: byte 3 ('\\n') %s", "vd\nx", nameRule), 2},
		{"testbed up name too long", false, []string{"testbed", "up", "--name", strings.Repeat("v", 33)},
			fmt.Sprintf("testbed up: --name: testbed name %q is 33 bytes long: at most 32", strings.Repeat("v", 33)), 2},
		// Not bad input but a wrong premise: an error all the same, not "down".
		{"testbed down of a missing testbed", false, []string{"testbed", "down", "--name", missing},
			fmt.Sprintf("testbed %q is not up: nothing to take down (`ip netns list` shows the testbeds, as xdpscan-NAME-scan)", missing), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.inNS {
				args = append([]string{"ip", "netns", "exec", ns, binary}, args...)
			} else {
				args = append([]string{binary}, args...)
			}
			before := treeState(t, dir)
			victimBefore := treeState(t, victimDir)
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.status {
				t.Errorf("exit %v, want status %d", err, tc.status)
			}
			if want := "xdpscan: " + tc.want + "\n"; stderr.String() != want {
				t.Errorf("stderr\n%q\nwant\n%q", stderr.String(), want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			// Refused before any work: no setup, no scan, no capture.
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("took %v to refuse", el)
			}
			if d := treeDiff(before, treeState(t, dir)); len(d) > 0 {
				t.Errorf("the working directory changed: %v", d)
			}
			if d := treeDiff(victimBefore, treeState(t, victimDir)); len(d) > 0 {
				t.Errorf("the victim's directory changed: %v", d)
			}
		})
	}
}

// TestTinyRateStopsOnSIGINT: at one probe in 1000s the scan is waiting for
// its second probe; SIGINT must end it within a second, XDP detached (the
// pacing sleep once ignored signals, and the program stayed attached
// until SIGKILL).
func TestTinyRateStopsOnSIGINT(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	cmd := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "scan", "198.18.0.0/24", "-p", "80",
		"--allow", "198.18.0.0/15", "--rate", "0.001", "--wait", "0s", "--status", "none")
	cmd.Dir = dir
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // only if the test failed before Wait
	deadline := time.Now().Add(10 * time.Second)
	for attachedMode(t, tb) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the scan never attached:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The first probe leaves at once, the second is 1000s away: wait
	// until the first has surely gone, so the pacing wait is the one cut.
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if el := time.Since(sent); el > time.Second {
			t.Errorf("exited %v after SIGINT, want within 1s", el)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("exit %v, want 130 (interrupted)\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 5s after SIGINT:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted after 1 of ") {
		t.Errorf("stderr lacks the interrupt summary:\n%s", stderr.String())
	}
	if m := attachedMode(t, tb); m != "" {
		t.Fatalf("XDP (%s) still attached to %s after the scan exited", m, testbed.ScanIf)
	}
}

// TestCaptureDurationExcludesSetup: --duration counts from the moment
// packets are captured ("listening on"), not from the start of the
// command: compile and attach once ate into it.
func TestCaptureDurationExcludesSetup(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const d = time.Second
	// A filter libpcap takes about two seconds to compile here: setup
	// longer than d, which a --duration counted from the start would
	// have used up before the first packet.
	terms := make([]string, 300)
	for i := range terms {
		terms[i] = fmt.Sprintf("tcp port %d", i+1)
	}
	cmd := exec.Command("ip", "netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf,
		"--count-only", "--duration", d.String(), strings.Join(terms, " or "))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer pr.Close()
	var all bytes.Buffer
	var listening time.Time
	buf := make([]byte, 4096)
	for {
		n, err := pr.Read(buf)
		all.Write(buf[:n])
		if listening.IsZero() && strings.Contains(all.String(), "listening on") {
			listening = time.Now()
		}
		if err != nil {
			break // the capture closed stderr: it exited
		}
	}
	exited := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture: %v\n%s", err, all.String())
	}
	if listening.IsZero() {
		t.Fatalf("no \"listening on\" line:\n%s", all.String())
	}
	// At least d after the capture began (less a little for the pipe),
	// and not much more: the ring drain and the summary are quick.
	if el := exited.Sub(listening); el < d-50*time.Millisecond || el > d+2*time.Second {
		t.Fatalf("captured for %v after \"listening on\", want %v:\n%s", el, d, all.String())
	}
	var m loader.Mode
	if err := testbed.Do(tb.TargetNS(), func() (err error) { m, err = loader.AttachedMode(testbed.TargetIf); return err }); err != nil {
		t.Fatal(err)
	}
	if m != "" {
		t.Fatalf("XDP (%s) still attached to %s", m, testbed.TargetIf)
	}
	// --mode auto on veth takes received packets at tcx ingress.
	for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		if n := tcxPrograms(t, tb.TargetNS(), testbed.TargetIf, at); n != 0 {
			t.Fatalf("%d programs still on %s's tcx %s", n, testbed.TargetIf, at)
		}
	}
}

// TestHugePortSpecBoundedMemory: -p with 300 copies of 1-65535 once took
// 318 MB (a list as long as the text); the ports are a set now. The run
// stops at a bad --rate, which is checked after -p is parsed.
func TestHugePortSpecBoundedMemory(t *testing.T) {
	ns := bareNetns(t)
	spec := strings.TrimSuffix(strings.Repeat("1-65535,", 300), ",")
	// GNU time forks xdpscan from its own small process and prints its
	// peak RSS (KiB): a child exec'd straight from this test process would
	// report this process's peak, which exec carries over (the kernel's
	// hiwater_rss of the old mm, a race-enabled test binary's 200 MB).
	cmd := exec.Command("ip", "netns", "exec", ns, "/usr/bin/time", "-f", "maxrss %M", binary, "scan", "198.18.0.1", "-p", spec,
		"--allow", "198.18.0.0/15", "--rate", "NaN")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--rate NaN") {
		t.Fatalf("exit %v, output %q: want the --rate error, status 2", err, out)
	}
	i := strings.LastIndex(string(out), "maxrss ")
	if i < 0 {
		t.Fatalf("no peak RSS from /usr/bin/time in %q", out)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(out[i+len("maxrss "):])), 10, 64)
	if err != nil {
		t.Fatalf("peak RSS in %q: %v", out, err)
	}
	rss := kib << 10
	t.Logf("peak RSS %d MB", rss>>20)
	if rss > 64<<20 {
		t.Fatalf("peak RSS %d MB parsing the spec, want under 64 MB", rss>>20)
	}
}
