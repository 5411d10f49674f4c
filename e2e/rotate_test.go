package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/testbed"
)

// rotFlood sends count 60-byte UDP frames to port 9 of a filtered address
// from the scanner's side, as fast as the link takes them.
func rotFlood(t *testing.T, tb *testbed.Testbed, count int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "bench", "flood", "-i", testbed.ScanIf,
		"--dst", "198.18.0.250", "--count", strconv.Itoa(count)).CombinedOutput()
	if err != nil {
		t.Fatalf("flood: %v\n%s", err, out)
	}
}

// rotCapture runs `xdpscan capture` on the target with args (the flags
// before are wrap's), calls traffic once it is attached, then stops it with
// SIGINT unless it ends by itself, and returns its stats and stderr.
func rotCapture(t *testing.T, tb *testbed.Testbed, dir string, wrap []string, traffic func(), args ...string) (capture.Stats, string) {
	t.Helper()
	stats := filepath.Join(dir, "stats.json")
	full := append(append([]string{"netns", "exec", tb.TargetNS()}, wrap...), binary, "capture", "-i", testbed.TargetIf,
		"--duration", "30s", "--stats-json", stats)
	cmd := exec.Command("ip", append(full, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if strings.Contains(stderr.String(), "listening on") { // every program attached
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("capture never attached:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	traffic()
	var err error
	select {
	case err = <-done: // ended by itself (-G with -W)
	case <-time.After(500 * time.Millisecond):
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("capture did not stop on SIGINT:\n%s", stderr.String())
		}
	}
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr.String())
	}
	var st capture.Stats
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st, stderr.String()
}

// captureFiles are the files in dir named like re, in name order, and
// whether anything else (a temporary file left behind) is there.
func captureFiles(t *testing.T, dir string, re *regexp.Regexp, others ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		switch {
		case re.MatchString(e.Name()):
			out = append(out, e.Name())
		case e.Name() == "stats.json" || slices.Contains(others, e.Name()):
		default:
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
	return out
}

// capinfosCounts reads every file with Wireshark's reader (capinfos: the
// library tshark reads with, one process for all files: tshark takes
// seconds to start on a busy machine) and returns each one's packets.
func capinfosCounts(t *testing.T, dir string, files []string) map[string]int {
	t.Helper()
	args := []string{"-c", "-M"}
	for _, f := range files {
		args = append(args, filepath.Join(dir, f))
	}
	out, err := exec.Command("capinfos", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos %v: %v\n%s", files, err, out)
	}
	counts := map[string]int{}
	name := ""
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch strings.TrimSpace(k) {
		case "File name":
			name = filepath.Base(strings.TrimSpace(v))
		case "Number of packets":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("capinfos: %q", line)
			}
			counts[name] = n
		}
	}
	if len(counts) != len(files) {
		t.Fatalf("capinfos read %d of %d files:\n%s", len(counts), len(files), out)
	}
	return counts
}

// Rotation under a bounded flood: every file reads in Wireshark and the
// files' packets add up to what the capture says it wrote; -W keeps its
// ring of N files; -G names files by strftime and ends after -W files; -z
// runs once per rotation, with no capability (as root, and as -Z nobody
// with that user's IDs).
func TestCaptureRotation(t *testing.T) {
	if _, err := exec.LookPath("capinfos"); err != nil {
		t.Skip("capinfos (tshark's package) is not installed (`make deps`)")
	}
	tb := upTestbed(t, testbed.Config{})
	// -z's script: the file it got, its packets as capinfos reads them at
	// that moment, and its own credentials.
	zscript := func(dir string) string {
		p := filepath.Join(dir, "z.sh")
		body := "#!/bin/sh\nn=$(capinfos -c -M \"$1\" | awk '/^Number of packets:/ {print $NF}')\n" +
			"echo \"$1 $n $(id -u) $(awk '/^(CapEff|CapBnd|NoNewPrivs):/ {printf \"%s \", $2}' /proc/self/status)\" >> " + filepath.Join(dir, "z.log") + "\n"
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		nobody  bool     // -z runs as uid 65534
		wrap    []string // how the capture is started
		args    func(dir string) []string
		floods  []int
		files   *regexp.Regexp
		minFile int
		ring    int  // -W with -C: exactly this many files kept
		limit   bool // -G with -W: the capture ends by itself
		post    bool
	}{
		{name: "-C 1, -z as root", args: func(d string) []string {
			return []string{"-w", filepath.Join(d, "out.pcapng"), "-C", "1", "-z", zscript(d)}
		}, floods: []int{40000}, files: regexp.MustCompile(`^out\.pcapng\d*$`), minFile: 4, post: true},
		{name: "-C 1 -W 3 ring", args: func(d string) []string {
			return []string{"-w", filepath.Join(d, "ring.pcap"), "-C", "1", "-W", "3"}
		}, floods: []int{60000}, files: regexp.MustCompile(`^ring\.pcap[0-2]$`), ring: 3},
		{name: "-G 1 strftime names", args: func(d string) []string {
			return []string{"-w", filepath.Join(d, "cap-%H%M%S.pcapng"), "-G", "1"}
		}, floods: []int{10000, 10000, 10000}, files: regexp.MustCompile(`^cap-\d{6}\.pcapng$`), minFile: 3},
		{name: "-G 1 -W 2 stops", args: func(d string) []string {
			return []string{"-w", filepath.Join(d, "g-%H%M%S.pcapng"), "-G", "1", "-W", "2"}
		}, floods: []int{10000, 10000, 10000}, files: regexp.MustCompile(`^g-\d{6}\.pcapng$`), ring: 2, limit: true},
		{name: "-C 1 -z as -Z nobody", nobody: true, args: func(d string) []string {
			return []string{"-w", filepath.Join(d, "nb.pcapng"), "-C", "1", "-z", zscript(d), "-Z", "nobody"}
		}, floods: []int{30000}, files: regexp.MustCompile(`^nb\.pcapng\d*$`), minFile: 3, post: true},
		// The documented capabilities are enough for a rotating capture
		// (the bounding set stays: without CAP_SETPCAP it cannot shrink).
		{name: "-C 1 -z as uid 65534 with CAP_BPF and CAP_NET_ADMIN", nobody: true, wrap: asNobody("bpf", "net_admin"), args: func(d string) []string {
			return []string{"-w", filepath.Join(d, "up.pcapng"), "-C", "1", "-z", zscript(d)}
		}, floods: []int{30000}, files: regexp.MustCompile(`^up\.pcapng\d*$`), minFile: 3, post: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := nobodyDir(t)
			st, stderr := rotCapture(t, tb, dir, tc.wrap, func() {
				for i, n := range tc.floods {
					if i > 0 {
						time.Sleep(1100 * time.Millisecond) // the next -G period
					}
					rotFlood(t, tb, n)
				}
			}, append(tc.args(dir), "-s", "128", "udp dst port 9")...)
			sent := 0
			for _, n := range tc.floods {
				sent += n
			}
			files := captureFiles(t, dir, tc.files, "z.sh", "z.log")
			t.Logf("%d files, written %d, ring lost %d, not written (limit) %d", len(files), st.Written, st.RingLost, st.NotWrittenFileLimit)
			// At the -W limit the capture stops itself mid-flood: packets the
			// program matched between the ring's last read and the detach are
			// counted by neither (as with -c), and the last flood may come
			// after the end.
			accounted := st.Written + st.RingLost + st.NotWrittenFileLimit
			if (accounted != st.Matched || st.Matched != uint64(sent)) && !(tc.limit && accounted <= st.Matched && st.Matched <= uint64(sent)) {
				t.Fatalf("stats %+v: %d sent, want each matched and written, lost in the ring, or past the limit", st, sent)
			}
			if st.RingLost != 0 {
				t.Errorf("%d lost in the ring", st.RingLost)
			}
			counts := capinfosCounts(t, dir, files)
			total := 0
			for _, n := range counts {
				total += n
			}
			switch {
			case tc.ring > 0 && len(files) != tc.ring:
				t.Fatalf("files %v: want %d", files, tc.ring)
			case tc.ring == 0 && len(files) < tc.minFile:
				t.Fatalf("files %v: want at least %d", files, tc.minFile)
			case tc.ring == 0 || tc.limit:
				if uint64(total) != st.Written {
					t.Fatalf("the files hold %d packets, %d written", total, st.Written)
				}
			default:
				if total == 0 || uint64(total) > st.Written || !strings.Contains(stderr, "the ring keeps 3") {
					t.Fatalf("the ring's files hold %d packets of %d written:\n%s", total, st.Written, stderr)
				}
			}
			if tc.limit && (!strings.Contains(stderr, "Maximum file limit reached: 2") || st.NotWrittenFileLimit == 0 || st.Interrupted) {
				t.Fatalf("-G 1 -W 2 did not end the capture at the limit (%d not written):\n%s", st.NotWrittenFileLimit, stderr)
			}
			if !tc.post {
				return
			}
			b, err := os.ReadFile(filepath.Join(dir, "z.log"))
			if err != nil {
				t.Fatalf("-z never ran: %v\n%s", err, stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != len(files)-1 {
				t.Fatalf("-z ran %d times for %d files (every rotation, not the last file):\n%s", len(lines), len(files), b)
			}
			wantUID := "0"
			if tc.nobody {
				wantUID = "65534"
			}
			for _, line := range lines {
				f := strings.Fields(line)
				// A ring name's file may since have been replaced.
				complete := f[1] != "0" && (tc.ring > 0 || f[1] == strconv.Itoa(counts[filepath.Base(f[0])]))
				if len(f) != 6 || !tc.files.MatchString(filepath.Base(f[0])) || !complete || f[2] != wantUID ||
					f[3] != "0000000000000000" || (f[4] != "0000000000000000" && tc.wrap == nil) || f[5] != "1" {
					t.Errorf("-z saw %q: want a complete file, uid %s, no effective or bounding capability, no_new_privs", line, wantUID)
				}
			}
		})
	}
}
