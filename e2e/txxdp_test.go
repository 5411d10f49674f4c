package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// scan --tx xdp with --senders finds exactly the truth against the XDP
// responder at the maximum rate: every probe reaches the target (a call
// the veth refused frames of is sent again, transmit/xdpresend.go) and
// each sender feeds its own queue of a 2-queue testbed.
func TestTxXDPSendersExact(t *testing.T) {
	const prefix = "198.18.0.0/20" // x 5 ports: 20,480 probes, ~0.2 s at the maximum
	for _, tc := range []struct {
		name    string
		cfg     testbed.Config
		senders string
		// eachQueue: every target queue takes frames (senders on
		// distinct CPUs; needs as many CPUs as queues).
		eachQueue bool
		nobody    bool // as uid 65534 with the documented capabilities
	}{
		{"2 queues, 2 senders", testbed.Config{Target: testbed.TargetXDP, Queues: 2}, "2", true, false},
		// Two CPUs fill the one queue's ring, drained by a NAPI on one of
		// them: refusals (116k of 262k frames at the maximum, before the
		// resend) are sent again.
		{"1 queue, 2 senders", testbed.Config{Target: testbed.TargetXDP, TargetNAPI: true}, "2", false, false},
		{"1 queue, 2 senders, uid 65534", testbed.Config{Target: testbed.TargetXDP, TargetNAPI: true}, "2", false, true},
		{"2 queues, 1 sender", testbed.Config{Target: testbed.TargetXDP, Queues: 2}, "1", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := upTestbed(t, tc.cfg)
			open, closed := truth(tb.Config, prefix)
			before := xmitPerQueue(t, tb.ScanNS())
			dir, wrap := t.TempDir(), []string(nil)
			if tc.nobody {
				dir, wrap = nobodyDir(t), asNobody("bpf", "net_admin", "net_raw")
			}
			results, st, _, err := runScanWrapped(t, tb, dir, wrap, prefix, "-p", scanPortsFlag, "--tx", "xdp",
				"--senders", tc.senders, "--rate", "10000000", "--wait", "1500ms")
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			after := xmitPerQueue(t, tb.ScanNS())
			t.Logf("%.0f probes/s, %d probes, %d resent after %d refused, tx errors %d, frames per queue %v -> %v",
				st.SendPPS, st.ProbesSent, st.TxResent, st.TxRefused, st.TxErrors, before, after)
			checkAgainstTruth(t, results, open, closed)
			if want := uint64(4096 * len(scanPorts)); st.ProbesSent != want || st.TxErrors != 0 {
				t.Errorf("stats: %d probes, %d tx errors: want %d, 0", st.ProbesSent, st.TxErrors, want)
			}
			if tc.eachQueue && runtime.NumCPU() >= tb.Queues {
				for q := range tb.Queues {
					if after[q] == before[q] {
						t.Errorf("target queue %d took no frame (%v -> %v): the senders share a CPU", q, before, after)
					}
				}
			}
		})
	}
}

// A peer NAPI that runs only when the sender lets it: the target queue's
// NAPI in a kernel thread at SCHED_IDLE on CPU 0, the scan on CPU 0 too,
// so the 256-frame ring drains only while the sender sleeps. A call
// finds the ring still full of the last one's frames and the veth refuses
// them; the scan must still find exactly the truth, by resending. (A
// real-time scan instead starved the thread for good: the Go runtime's
// other threads kept CPU 0 busy while the sender slept.)
func TestTxXDPResendsRefusedFrames(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Target: testbed.TargetXDP, TargetNAPI: true})
	const prefix = "198.18.8.0/22" // x 5 ports: 5,120 probes
	starveTargetNAPI(t, tb)
	open, closed := truth(tb.Config, prefix)
	results, st, _, err := runScanWrapped(t, tb, t.TempDir(), []string{"taskset", "-c", "0"},
		prefix, "-p", scanPortsFlag, "--tx", "xdp", "--rate", "10000000", "--wait", "1500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	t.Logf("%d probes, %d resent after %d refused, tx errors %d", st.ProbesSent, st.TxResent, st.TxRefused, st.TxErrors)
	checkAgainstTruth(t, results, open, closed)
	if st.TxRefused == 0 || st.TxResent < st.TxRefused || st.TxErrors != 0 {
		t.Errorf("stats: %d refused, %d resent, %d tx errors: want refusals (else this test proves nothing), all resent, no error",
			st.TxRefused, st.TxResent, st.TxErrors)
	}
}

// napiThreads are the PIDs of the kernel's napi/xs-tgt-* threads (every
// testbed's: the set before and after one is made tells its own apart).
func napiThreads(t *testing.T) map[int]bool {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm")); err == nil &&
			strings.HasPrefix(string(b), "napi/"+testbed.TargetIf+"-") {
			out[pid] = true
		}
	}
	return out
}

// xmitPerQueue is the scanner end's tx_queue_N_xdp_xmit counters (frames
// its peer's queue N took from XDP), by N.
func xmitPerQueue(t *testing.T, ns string) map[int]uint64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ethtool", "-S", testbed.ScanIf).Output()
	if err != nil {
		t.Fatalf("ethtool -S %s: %v", testbed.ScanIf, err)
	}
	m := map[int]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		q, rest, ok2 := strings.Cut(strings.TrimPrefix(name, "tx_queue_"), "_")
		if !ok || !ok2 || rest != "xdp_xmit" || !strings.HasPrefix(name, "tx_queue_") {
			continue
		}
		n, err1 := strconv.Atoi(q)
		v, err2 := strconv.ParseUint(val, 10, 64)
		if err1 == nil && err2 == nil {
			m[n] = v
		}
	}
	return m
}

// What a new user meets first: `testbed up --target xdp` leaves the
// target's end without NAPI, so a veth drops every frame sent from XDP.
// The scan stops with an error that names the testbed's remedy.
func TestTxXDPWithoutPeerNAPINamesTheRemedy(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Target: testbed.TargetXDP})
	out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "scan", "198.18.0.0/24", "-p", "80",
		"--allow", "198.18.0.0/15", "--tx", "xdp", "--rate", "1000000", "--wait", "0s", "-o", "/dev/null", "--status", "none").CombinedOutput()
	if err == nil {
		t.Fatalf("scan --tx xdp into a peer without NAPI exited 0:\n%s", out)
	}
	for _, want := range []string{"the veth peer took none of the first", "testbed up --target-napi", "--tx socket"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error %q: want it to say %q", out, want)
		}
	}
}

// The refused count read after every call comes from sysfs under `ip netns
// exec` (/sys is the namespace's); a process that entered the namespace
// without its own /sys (nsenter --net) reads the driver's ethtool counters
// instead. Both must find exactly the truth with refusals forced as in
// TestTxXDPResendsRefusedFrames.
func TestTxXDPResendsWithoutSysfs(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Target: testbed.TargetXDP, TargetNAPI: true})
	const prefix = "198.18.12.0/22"
	starveTargetNAPI(t, tb)
	open, closed := truth(tb.Config, prefix)
	dir := t.TempDir()
	out, stats := filepath.Join(dir, "out.ndjson"), filepath.Join(dir, "stats.json")
	cmd := exec.Command("nsenter", "--net=/run/netns/"+tb.ScanNS(), "taskset", "-c", "0", binary, "scan", prefix,
		"-p", scanPortsFlag, "--allow", "198.18.0.0/15", "--tx", "xdp", "--rate", "10000000", "--wait", "1500ms",
		"-o", out, "--stats-json", stats, "--status", "none")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scan under nsenter --net: %v\n%s", err, b)
	}
	var results []ndjsonResult
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r ndjsonResult
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("NDJSON line %q: %v", line, err)
		}
		results = append(results, r)
	}
	var st scan.Stats
	if b, err = os.ReadFile(stats); err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("stats %s: %v", stats, err)
	}
	t.Logf("%d probes, %d resent after %d refused, tx errors %d", st.ProbesSent, st.TxResent, st.TxRefused, st.TxErrors)
	checkAgainstTruth(t, results, open, closed)
	if st.TxRefused == 0 || st.TxResent < st.TxRefused || st.TxErrors != 0 {
		t.Errorf("stats: %d refused, %d resent, %d tx errors: want refusals (else this test proves nothing), all resent, no error",
			st.TxRefused, st.TxResent, st.TxErrors)
	}
}

// starveTargetNAPI runs the target end's NAPI in a kernel thread at
// SCHED_IDLE on CPU 0: a sender on CPU 0 then finds the 256-frame ring
// still full of its last call's frames, and the veth refuses frames.
func starveTargetNAPI(t *testing.T, tb *testbed.Testbed) {
	t.Helper()
	old := napiThreads(t)
	if out, err := exec.Command("ip", "netns", "exec", tb.TargetNS(), "sh", "-c",
		"echo 1 > /sys/class/net/"+testbed.TargetIf+"/threaded").CombinedOutput(); err != nil {
		t.Fatalf("threaded NAPI on the target: %v %s", err, out)
	}
	var pinned int
	for pid := range napiThreads(t) {
		if old[pid] {
			continue
		}
		if out, err := exec.Command("taskset", "-pc", "0", strconv.Itoa(pid)).CombinedOutput(); err != nil {
			t.Fatalf("pin NAPI thread %d: %v %s", pid, err, out)
		}
		if out, err := exec.Command("chrt", "-i", "-p", "0", strconv.Itoa(pid)).CombinedOutput(); err != nil {
			t.Fatalf("NAPI thread %d to SCHED_IDLE: %v %s", pid, err, out)
		}
		pinned++
	}
	if pinned == 0 {
		t.Fatal("threaded NAPI started no napi/xs-tgt-* kernel thread")
	}
}

// An interrupted --tx xdp --senders 2 scan keeps each sender's position
// (both send through the one program, each from its own slots), and the
// resume finds exactly the truth, no result written twice.
func TestTxXDPSendersInterruptAndResume(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Target: testbed.TargetXDP, Queues: 2})
	dir := t.TempDir()
	out := filepath.Join(dir, "part.ndjson")
	cmd, stderr := startSlowScan(t, tb, dir, out, 30, "--senders", "2", "--tx", "xdp")
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted scan exited 0:\n%s", stderr.String())
	}
	code, output := runIn(t, tb.ScanNS(), "scan", "--resume", out+".resume")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, output)
	}
	if strings.Contains(output, "not written twice") {
		t.Errorf("the senders' resume positions are exact, yet results were sent twice:\n%s", output)
	}
	checkResumedOutput(t, tb, out)
}
