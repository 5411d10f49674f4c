package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// TestNoDuplicateAtScale: a scan of 8.4M probes (a /16 × 64 ports, twice:
// --retries 1) against the XDP responder, which answers every probe, so
// every one of the ~3.9M answering pairs is answered twice. That overruns
// the kernel's dedup table (it holds ~4M fingerprints and evicts long
// before), which before the exact set in user space printed ~685k
// duplicate lines. Now: no pair twice, every pair of the truth once, the
// stats equal the lines, and the duplicates are counted, some of them by
// the user-space set (proof it was needed and worked).
func TestNoDuplicateAtScale(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Target: testbed.TargetXDP, TargetNAPI: true})
	const prefix, loPort, hiPort = "198.18.0.0/16", 1, 64
	dir := t.TempDir()
	// The list format (masscan's -oL): the same lines as NDJSON's, cheaper
	// to read back four million of.
	out, statsPath := filepath.Join(dir, "results.lst"), filepath.Join(dir, "stats.json")
	start := time.Now()
	cmd := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "scan", prefix, "-p", "1-64", "--retries", "1", "--reset=false",
		"--allow", "198.18.0.0/15", "--tx", "xdp", "--rate", "2000000", "--wait", "2s",
		"-o", out, "--format", "list", "--stats-json", statsPath, "--status", "none")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scan: %v\n%s", err, stderr.String())
	}
	elapsed := time.Since(start)

	var st scan.Stats
	b, err := os.ReadFile(statsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("stats JSON: %v", err)
	}

	// One bit per (address, port) of the scan: a line for a pair already
	// seen is a duplicate.
	p := netip.MustParsePrefix(prefix)
	base := p.Addr().As4()
	const nports = hiPort - loPort + 1
	printed := make([]uint64, (uint64(1)<<(32-p.Bits()))*nports/64)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]uint64{}
	lines, dups, wrong := 0, 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("#")) {
			continue
		}
		lines++
		// state proto port address time
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 {
			t.Fatalf("line %d %q: want 5 fields", lines, sc.Text())
		}
		var line struct {
			State, Proto string
			Port         uint16
		}
		line.State, line.Proto = fields[0], fields[1]
		port, perr := strconv.ParseUint(fields[2], 10, 16)
		line.Port = uint16(port)
		a, err := netip.ParseAddr(fields[3])
		if err != nil || perr != nil || !p.Contains(a) || line.Proto != "tcp" || line.Port < loPort || line.Port > hiPort {
			t.Fatalf("line %d %q: not a pair of the scan", lines, sc.Text())
		}
		a4 := a.As4()
		idx := (uint64(a4[2]-base[2])<<8|uint64(a4[3]))*nports + uint64(line.Port-loPort)
		if printed[idx/64]&(1<<(idx%64)) != 0 {
			if dups++; dups <= 5 {
				t.Errorf("duplicate line %q", sc.Text())
			}
		}
		printed[idx/64] |= 1 << (idx % 64)
		if string(tb.Config.State(a, line.Port)) != line.State {
			if wrong++; wrong <= 5 {
				t.Errorf("line %q: truth is %s", sc.Text(), tb.Config.State(a, line.Port))
			}
		}
		got[line.State]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	ports := make([]uint16, 0, nports)
	for port := uint16(loPort); port <= hiPort; port++ {
		ports = append(ports, port)
	}
	want := tb.Config.Tally(p, ports)
	t.Logf("%d probes in %v (send %.1fs): %d lines, %d duplicates suppressed (%d in user space), ring lost %d",
		st.ProbesSent, elapsed.Round(time.Millisecond), st.SendS, lines, st.Duplicates, st.DuplicatesUserSpace, st.RingLost)

	if dups != 0 || wrong != 0 {
		t.Fatalf("%d duplicate lines, %d lines against the truth", dups, wrong)
	}
	// Each pair was answered twice, so only a ring overrun that lost both
	// replies (the machine is shared; RingLost counts them) may miss one.
	missing := uint64(want[testbed.Open]+want[testbed.Closed]) - uint64(lines)
	if got["open"] > uint64(want[testbed.Open]) || got["closed"] > uint64(want[testbed.Closed]) || missing > st.RingLost {
		t.Errorf("printed %d open / %d closed, truth is %d / %d (%d replies lost in the ring)",
			got["open"], got["closed"], want[testbed.Open], want[testbed.Closed], st.RingLost)
	}
	if st.Open != got["open"] || st.Closed != got["closed"] || st.Replies != uint64(lines) {
		t.Errorf("stats say %d open, %d closed, %d replies; the output has %d, %d, %d lines",
			st.Open, st.Closed, st.Replies, got["open"], got["closed"], lines)
	}
	if st.ProbesSent < 8_000_000 {
		t.Errorf("sent %d probes, want at least 8M", st.ProbesSent)
	}
	// Every answering pair was answered twice: one reply printed, the
	// other suppressed by the kernel's table or, when it evicted the
	// pair, by the set in user space.
	c, err := tb.ResponderCounters()
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates+uint64(lines)+st.RingLost > c.TX {
		t.Errorf("%d lines + %d duplicates + %d lost exceed the responder's %d replies", lines, st.Duplicates, st.RingLost, c.TX)
	}
	// Every reply is a line, a duplicate or lost in the ring (nothing else
	// drops on the veth, though a crowded machine might).
	if accounted := st.Duplicates + uint64(lines) + st.RingLost; accounted < c.TX*9/10 {
		t.Errorf("%d lines + %d duplicates + %d lost account for too few of the responder's %d replies", lines, st.Duplicates, st.RingLost, c.TX)
	}
	if st.DuplicatesUserSpace == 0 || st.DuplicatesUserSpace > st.Duplicates {
		t.Errorf("duplicates %d, %d of them in user space: want some past the kernel's table, caught in user space",
			st.Duplicates, st.DuplicatesUserSpace)
	}
}
