package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// mixedFrames is every corpus frame kind, with its cut and damaged
// copies when mutate, and the capture tests' known traffic.
func mixedFrames(mutate bool) [][]byte {
	var out [][]byte
	if mutate {
		out = testpkt.Mutated()
	} else {
		for _, n := range testpkt.Corpus() {
			out = append(out, n.Frame)
		}
	}
	return append(out, knownTraffic()...)
}

// writeMixedPcap writes frames to a pcap; with ifaces > 1, to a pcapng
// whose packets go round the interfaces.
func writeMixed(t *testing.T, path string, ifaces int, mutate bool) int {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames := mixedFrames(mutate)
	ts := time.Unix(1700000000, 0)
	if ifaces <= 1 {
		w := pcapgo.NewWriterNanos(f)
		if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for i, fr := range frames {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(fr), Length: len(fr)}, fr); err != nil {
				t.Fatal(err)
			}
		}
		return len(frames)
	}
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "if0", LinkType: layers.LinkTypeEthernet, SnapLength: 262144}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{0}
	for i := 1; i < ifaces; i++ {
		id, err := w.AddInterface(pcapgo.NgInterface{Name: "if" + strconv.Itoa(i), LinkType: layers.LinkTypeEthernet, SnapLength: 262144})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(fr), Length: len(fr), InterfaceIndex: ids[i%len(ids)]}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return len(frames)
}

// offlineRun runs `xdpscan capture -r file args...` and returns its stats,
// stdout and stderr.
func offlineRun(t *testing.T, wrap []string, stdin string, args ...string) (capture.Stats, string, string) {
	t.Helper()
	dir := t.TempDir()
	if wrap != nil {
		dir = nobodyDir(t)
	}
	stats := filepath.Join(dir, "stats.json")
	full := append(append(append([]string(nil), wrap...), binary, "capture", "--stats-json", stats), args...)
	cmd := exec.Command(full[0], full[1:]...)
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("capture %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var st capture.Stats
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st, stdout.String(), stderr.String()
}

// tcpdumpCount is `tcpdump --count -r file filter`.
func tcpdumpCount(t *testing.T, file, filter string) uint64 {
	t.Helper()
	args := []string{"--count", "-r", file}
	if filter != "" {
		args = append(args, filter)
	}
	out, err := exec.Command("tcpdump", args...).Output()
	if err != nil {
		t.Fatalf("tcpdump %s: %v", strings.Join(args, " "), err)
	}
	n, err := strconv.ParseUint(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatalf("tcpdump --count said %q", out)
	}
	return n
}

// TestOfflineFiltersMatchTcpdump: the binary's -r runs every packet of a
// mixed file through the translated capture program (BPF_PROG_RUN) and
// finds exactly the count tcpdump -r finds, for a pcap and a pcapng of
// three interfaces, from a file and from stdin. Every one of the 39
// filters runs in capture's TestOfflineFiltersMatchTcpdump (the same
// path, in one process: each run here takes a second on a busy machine);
// here every fourth.
func TestOfflineFiltersMatchTcpdump(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	dir := t.TempDir()
	pcap, ng := filepath.Join(dir, "mixed.pcap"), filepath.Join(dir, "three.pcapng")
	total := writeMixed(t, pcap, 1, true)
	writeMixed(t, ng, 3, true)
	for i, f := range testpkt.Filters {
		if i%4 != 0 && f != "vlan and tcp" {
			continue
		}
		file, how := pcap, []string{"-r", pcap}
		switch i / 4 % 3 {
		case 1:
			file, how = ng, []string{"-r", ng}
		case 2:
			how = []string{"-r", "-"} // stdin
		}
		stdin := ""
		if how[1] == "-" {
			stdin = file
		}
		st, _, _ := offlineRun(t, nil, stdin, append(how, "--count-only", f)...)
		want := tcpdumpCount(t, file, f)
		if st.Matched != want || st.Seen != uint64(total) {
			t.Errorf("filter %q on %s: xdpscan matched %d of %d, tcpdump -r %d", f, strings.Join(how, " "), st.Matched, st.Seen, want)
		}
	}
}

// TestOfflineCombines: -r with -w, -c, the text output, and as uid 65534
// with CAP_BPF and CAP_NET_ADMIN only.
func TestOfflineCombines(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed (`make deps`)")
	}
	dir := t.TempDir()
	ng := filepath.Join(dir, "three.pcapng")
	writeMixed(t, ng, 3, true)
	clean := filepath.Join(dir, "clean.pcapng")
	writeMixed(t, clean, 3, false)
	t.Run("-w -c", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.pcap")
		st, _, stderr := offlineRun(t, nil, "", "-r", ng, "-w", out, "-c", "7", "udp")
		if st.Written != 7 || tsharkCount(t, out) != 7 || st.NotWritten != 0 {
			t.Fatalf("-r -w -c 7: stats %+v, tshark reads %d: want 7 (the rest of the file not read)\n%s", st, tsharkCount(t, out), stderr)
		}
	})
	t.Run("text", func(t *testing.T) {
		// Every frame kind, whole: the text is tcpdump's, but for its
		// HTTP and SSH decoders, which go on after xdpscan's line ends.
		st, stdout, _ := offlineRun(t, nil, "", "-r", clean, "-nn", "-e")
		want, err := exec.Command("tcpdump", "-nn", "-e", "-r", clean).Output()
		if err != nil {
			t.Fatal(err)
		}
		a, b := strings.Split(stdout, "\n"), strings.Split(string(want), "\n")
		same := len(a) == len(b)
		for i := 0; same && i < len(a); i++ {
			same = a[i] == b[i] || strings.HasPrefix(b[i], a[i]+": HTTP") || strings.HasPrefix(b[i], a[i]+": SSH")
		}
		if !same || st.Written == 0 {
			t.Fatalf("text of -r (%d written) differs from tcpdump -nn -r's:\n%s", st.Written, lineDiff(stdout, string(want), 10))
		}
	})
	t.Run("unprivileged", func(t *testing.T) {
		d := nobodyDir(t)
		file := filepath.Join(d, "in.pcapng")
		b, err := os.ReadFile(ng)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		st, _, _ := offlineRun(t, asNobody("bpf", "net_admin"), "", "-r", file, "--count-only", "tcp")
		if want := tcpdumpCount(t, file, "tcp"); st.Matched != want {
			t.Fatalf("as uid 65534 with CAP_BPF and CAP_NET_ADMIN: matched %d, tcpdump %d", st.Matched, want)
		}
	})
}

// lineDiff shows up to n lines that differ between ours and tcpdump's.
func lineDiff(ours, theirs string, n int) string {
	a, b := strings.Split(ours, "\n"), strings.Split(theirs, "\n")
	var out []string
	for i := 0; i < max(len(a), len(b)) && len(out) < 2*n; i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			out = append(out, "xdpscan: "+x, "tcpdump: "+y)
		}
	}
	return strings.Join(out, "\n")
}
