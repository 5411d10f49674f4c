package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
)

// TestCaptureAfterFragsProgram: someone else's generic XDP program with
// xdp.frags on the interface, after which TC ingress sees each frame from
// its IP header (kernel 6.18; bpf/include/skbmac.h). A capture at TC
// ingress after it, with no filter expression, writes every frame whole,
// as tcpdump does (the MAC header read from where the kernel keeps it);
// with an expression it cannot filter them, so it writes none and counts
// them in loss.no_mac_header. It never writes a frame without its MAC
// header (before the fix: `icmp` matched nothing, silently, and with no
// expression every frame was written from its IP header). The capture
// that writes them runs as uid 65534 with CAP_BPF and CAP_NET_ADMIN.
func TestCaptureAfterFragsProgram(t *testing.T) {
	requireTools(t, "tcpdump")
	frags := fragsXDP(t)
	tb := upTestbed(t, testbed.Config{})
	ns := tb.ScanNS()
	link := func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns, "ip", "link", "set", "dev", testbed.ScanIf}, args...)...)
	}
	if out, err := link("xdpgeneric", "obj", frags, "sec", "xdp.frags").CombinedOutput(); err != nil {
		t.Fatalf("attach the xdp.frags program: %v\n%s", err, out)
	}
	defer link("xdpgeneric", "off").Run()

	dir := t.TempDir()
	all, filtered, theirs := filepath.Join(nobodyDir(t), "all.pcapng"), filepath.Join(dir, "udp.pcapng"), filepath.Join(dir, "tcpdump.pcap")
	stats := filepath.Join(dir, "udp.json")
	// The one that writes them runs as uid 65534 with the documented
	// capabilities only: the MAC header's load needs nothing more.
	a := startBg(t, "capture as uid 65534", ns, append(asNobody("bpf", "net_admin"),
		binary, "capture", "-i", testbed.ScanIf, "-Q", "in", "-w", all, "--duration", "30s")...)
	f := startBg(t, "capture udp", ns, binary, "capture", "-i", testbed.ScanIf, "-Q", "in", "-w", filtered,
		"--stats-json", stats, "--duration", "30s", "udp")
	d := startBg(t, "tcpdump", ns, "tcpdump", "-i", testbed.ScanIf, "-Q", "in", "--immediate-mode", "-U", "-w", theirs)
	// Port 7778: the foreign program drops UDP to 7777 only.
	const n = 40
	sent := udpToScanner(n, 7778)
	sendRaw(t, tb.TargetNS(), testbed.TargetIf, sent, 1, 20*time.Microsecond)
	waitQuiet(t, theirs, 500*time.Millisecond)
	summary, fsummary := a.stop(t), f.stop(t)
	d.stop(t)

	isSent := map[string]bool{}
	for _, s := range sent {
		isSent[string(s)] = true
	}
	count := func(path string) (ours, headerless int) {
		for _, fr := range readCaptureFile(t, path) {
			if isSent[fr.data] {
				ours++
			}
			// Every frame here comes from the target: its source MAC
			// is at 6, where a frame from its IP header has its TTL,
			// protocol, checksum and source address.
			if len(fr.data) < 12 || !bytes.Equal([]byte(fr.data[6:12]), testbed.TargetMAC) {
				headerless++
			}
		}
		return ours, headerless
	}
	if got, _ := count(theirs); got != n {
		t.Fatalf("tcpdump wrote %d of the %d frames sent: no reference for this run", got, n)
	}
	if got, headerless := count(all); got != n || headerless != 0 {
		t.Errorf("capture with no filter expression wrote %d of the %d frames whole, and %d frames without their MAC header; want %d and 0\n%s",
			got, n, headerless, n, summary)
	}
	if strings.Contains(summary, "no MAC header") {
		t.Errorf("capture with no filter expression reports frames it could not filter:\n%s", summary)
	}

	var st struct {
		Written uint64 `json:"written"`
		Loss    struct {
			NoMACHeader uint64 `json:"no_mac_header"`
		} `json:"loss"`
	}
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if got, headerless := count(filtered); got != 0 || headerless != 0 || st.Written != 0 || st.Loss.NoMACHeader < n ||
		!strings.Contains(fsummary, "not filtered, no MAC header") {
		t.Errorf("capture 'udp' wrote %d of the frames sent and %d without their MAC header (written %d), counted %d without their MAC header; "+
			"want none written and at least %d counted, and the summary to say so\n%s", got, headerless, st.Written, st.Loss.NoMACHeader, n, fsummary)
	}
}
