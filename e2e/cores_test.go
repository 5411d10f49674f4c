package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// A scan whose replies are received on two CPUs at once (two queues per
// veth end, RPS over both CPUs, two senders on two CPUs feeding two
// queues): the in-kernel dedup table may race between the CPUs, and the
// output still holds each pair once, exactly the truth. The stats show
// the replies were seen on both CPUs, and ring loss per CPU.
func TestScanRepliesOnTwoCPUsNoDuplicate(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Queues: 2, RPS: true})
	const prefix = "198.18.4.0/22"
	open, closed := truth(tb.Config, prefix)
	for _, tc := range []struct {
		rings     string
		wantRings int // rings read: the shared one, and one per CPU
	}{
		{"auto", 3}, // veth receives on every CPU: a ring each
		{"shared", 1},
	} {
		t.Run("rings "+tc.rings, func(t *testing.T) {
			results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", scanPortsFlag, "--rate", "5000", "--wait", "1500ms", "--senders", "2", "--rings", tc.rings)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			t.Logf("stats: %d probes, %d open, %d closed, %d tx errors, %d ring lost, replies per CPU %v", st.ProbesSent, st.Open, st.Closed, st.TxErrors, st.RingLost, st.RxPerCPU)
			checkAgainstTruth(t, results, open, closed)
			busy := 0
			for _, n := range st.RxPerCPU {
				if n > 0 {
					busy++
				}
			}
			if busy < 2 {
				t.Fatalf("replies seen per CPU %v: want replies on at least 2 CPUs (else this test proves nothing)", st.RxPerCPU)
			}
			if len(st.RingLostPerCPU) != len(st.RxPerCPU) || st.Senders != 2 {
				t.Errorf("stats: ring lost per CPU %v, senders %d: want one count per CPU, 2 senders", st.RingLostPerCPU, st.Senders)
			}
			if st.Rings == nil || st.Rings.Rings != min(tc.wantRings, 1+len(st.Rings.ReceivingCPUs)) || string(st.Rings.Mode) != tc.rings {
				t.Errorf("stats rings %+v: want mode %s, %d rings", st.Rings, tc.rings, tc.wantRings)
			}
			t.Logf("replies per CPU %v, kernel table duplicates %d (all refused before output)", st.RxPerCPU, st.Duplicates)
		})
	}
}

// An interrupted --senders 2 scan keeps each slice's position, and its
// resume, with another --senders, sends every remaining probe once: the
// output is the truth, no result sent twice.
func TestSendersInterruptAndResume(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	out := filepath.Join(dir, "part.ndjson")
	resume := out + ".resume"
	cmd, stderr := startSlowScan(t, tb, dir, out, 30, "--senders", "2")
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted scan exited 0:\n%s", stderr.String())
	}
	b, err := os.ReadFile(resume)
	if err != nil {
		t.Fatalf("no resume file: %v\n%s", err, stderr.String())
	}
	var f struct {
		Position struct {
			Next    uint64   `json:"next"`
			Senders []uint64 `json:"senders"`
		} `json:"position"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Position.Senders) != scan.MaxSenders || f.Position.Next != slices.Min(f.Position.Senders) {
		t.Fatalf("resume position %+v: want every slice's position (%d), next their least", f.Position, scan.MaxSenders)
	}
	code, output := runIn(t, tb.ScanNS(), "scan", "--resume", resume, "--senders", "1")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, output)
	}
	if strings.Contains(output, "not written twice") {
		t.Errorf("the senders' resume positions are exact, yet results were sent twice:\n%s", output)
	}
	checkResumedOutput(t, tb, out)
}

// Per-CPU rings on a live capture, and --senders 2, as uid 65534 with
// only the documented capabilities.
func TestUnprivilegedRingsAndSenders(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	t.Run("capture --rings per-cpu", func(t *testing.T) {
		dir := nobodyDir(t)
		file := filepath.Join(dir, "out.pcapng")
		st := runCaptureWrapped(t, tb, asNobody("bpf", "net_admin"), dir, "--rings", "per-cpu", "-Q", "in", "-w", file, "udp dst port 5000")
		if st.Written != 300 || st.Matched != 300 || st.RingLost != 0 {
			t.Fatalf("stats %+v: want 300 matched and written, nothing lost", st)
		}
		if st.Rings == nil || st.Rings.Rings < 2 || st.Rings.Late != 0 || len(st.Rings.RecordsPerRing) != st.Rings.Rings {
			t.Fatalf("rings %+v: want the shared ring and one per CPU, nothing late", st.Rings)
		}
		if n := tsharkCount(t, file); n != 300 {
			t.Fatalf("tshark reads %d packets, want 300", n)
		}
	})
	t.Run("scan --senders 2", func(t *testing.T) {
		const prefix = "198.18.2.0/24"
		open, closed := truth(tb.Config, prefix)
		results, st, _, err := runScanWrapped(t, tb, nobodyDir(t), asNobody("bpf", "net_admin", "net_raw"),
			prefix, "-p", scanPortsFlag, "--senders", "2", "--rate", "10000", "--wait", "1500ms")
		if err != nil {
			t.Fatalf("scan as uid 65534: %v", err)
		}
		checkAgainstTruth(t, results, open, closed)
		if st.Senders != 2 || st.ProbesSent != uint64(256*len(scanPorts)) {
			t.Fatalf("stats: %d senders, %d probes: want 2 senders, %d probes", st.Senders, st.ProbesSent, 256*len(scanPorts))
		}
	})
}

// Bad --rings, -i, --senders and --queues: a clear error and exit status
// 2, before anything is attached or sent.
func TestCoresBadInput(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"rings", []string{"capture", "-i", "lo", "--rings", "many", "--count-only"}, `--rings "many": use auto, shared or per-cpu`},
		{"interface twice", []string{"capture", "-i", "lo", "-i", "lo", "--count-only"}, "-i lo given twice"},
		{"interface list with a missing one", []string{"capture", "-i", "lo,nosuch0", "--count-only"}, "interface nosuch0: no such interface"},
		{"several interfaces into pcap", []string{"capture", "-i", "lo,nosuch0", "-w", filepath.Join(dir, "x.pcap")}, "a pcap file has one interface"},
		{"several interfaces on libpcap", []string{"capture", "-i", "lo,nosuch0", "--rx", "pcap", "--count-only"}, "need --rx xdp"},
		{"senders 0", []string{"scan", "198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--senders", "0"}, "--senders 0: use 1 to 64"},
		{"senders 65", []string{"scan", "198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "-T", "65"}, "--senders 65: use 1 to 64"},
		{"senders with connect", []string{"scan", "198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--senders", "2", "--connect"}, "--connect has its own workers"},
		{"senders with a relay", []string{"scan", "198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--senders", "2", "--tx", "xdp", "--tx-relay-cpu", "1"}, "the relay is one CPU's thread"},
		{"queues 0", []string{"testbed", "up", "--name", "crbad", "--queues", "0"}, "--queues 0: use 1 to 64"},
		{"flood senders on xdp", []string{"bench", "flood", "-i", "lo", "--dst", "198.18.0.1", "--count", "1", "--senders", "2", "--gen", "xdp"}, "--senders 2 needs --gen socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(binary, tc.args...).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output:\n%s", err, out)
			}
			if strings.Contains(string(out), "panic") || !strings.Contains(string(out), tc.want) {
				t.Fatalf("output %q lacks %q", out, tc.want)
			}
		})
	}
}
