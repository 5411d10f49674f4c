package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

var scanPorts = []uint16{22, 80, 443, 8080, 9000}

const scanPortsFlag = "22,80,443,8080,9000"

type pair struct {
	addr netip.Addr
	port uint16
}

// truth is the exact set of open and closed pairs in prefix × scanPorts.
func truth(cfg testbed.Config, prefix string) (open, closed map[pair]bool) {
	return portTruth(cfg, prefix, scanPorts...)
}

type ndjsonResult struct {
	IP     string `json:"ip"`
	Port   uint16 `json:"port"`
	Proto  string `json:"proto"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	TTL    int    `json:"ttl"`
	TS     string `json:"ts"`
}

// runScan runs the xdpscan binary in the scanner namespace and returns its
// NDJSON results, stats and exit error.
func runScan(t *testing.T, tb *testbed.Testbed, dir string, args ...string) ([]ndjsonResult, scan.Stats, error) {
	t.Helper()
	results, st, _, err := runScanWrapped(t, tb, dir, nil, args...)
	return results, st, err
}

// runScanWrapped is runScan with the binary started through wrap (prlimit,
// setpriv, ...) inside the namespace; it also returns stderr.
func runScanWrapped(t *testing.T, tb *testbed.Testbed, dir string, wrap []string, args ...string) ([]ndjsonResult, scan.Stats, string, error) {
	t.Helper()
	out := filepath.Join(dir, fmt.Sprintf("results-%d.ndjson", time.Now().UnixNano()))
	stats := out + ".stats.json"
	full := append([]string{"netns", "exec", tb.ScanNS()}, wrap...)
	full = append(full, binary, "scan", "--allow", "198.18.0.0/15,2001:2::/48", "-o", out, "--stats-json", stats, "--status", "none")
	cmd := exec.Command("ip", append(full, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		t.Logf("xdpscan stderr:\n%s", stderr.String())
	}
	var results []ndjsonResult
	if f, ferr := os.Open(out); ferr == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if output.IsPartHeader(sc.Bytes()) { // a sharded scan's first line
				continue
			}
			var r ndjsonResult
			if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
				t.Fatalf("NDJSON line %q: %v", sc.Text(), jerr)
			}
			results = append(results, r)
		}
		f.Close()
	}
	var st scan.Stats
	if b, serr := os.ReadFile(stats); serr == nil && len(b) > 0 {
		if jerr := json.Unmarshal(b, &st); jerr != nil {
			t.Fatalf("stats JSON: %v", jerr)
		}
	}
	return results, st, stderr.String(), err
}

// checkAgainstTruth compares results with the ground truth exactly.
func checkAgainstTruth(t *testing.T, results []ndjsonResult, open, closed map[pair]bool) {
	t.Helper()
	seen := map[pair]bool{}
	gotOpen, gotClosed := 0, 0
	for _, r := range results {
		p := pair{netip.MustParseAddr(r.IP), r.Port}
		if seen[p] {
			t.Errorf("duplicate result %s:%d", r.IP, r.Port)
		}
		seen[p] = true
		if r.Proto != "tcp" || r.TTL != 64 {
			t.Errorf("result %+v: want proto tcp, ttl 64", r)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.TS); err != nil {
			t.Errorf("result %+v: ts: %v", r, err)
		}
		switch r.State {
		case "open":
			gotOpen++
			if !open[p] {
				t.Errorf("false positive: %s:%d reported open", r.IP, r.Port)
			}
		case "closed":
			gotClosed++
			if !closed[p] {
				t.Errorf("false positive: %s:%d reported closed", r.IP, r.Port)
			}
		default:
			t.Errorf("result %+v: unknown state", r)
		}
	}
	if gotOpen != len(open) || gotClosed != len(closed) {
		t.Fatalf("found %d open / %d closed, truth is %d open / %d closed", gotOpen, gotClosed, len(open), len(closed))
	}
}

func TestSYNScanFindsExactlyTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.0.0/22"
	open, closed := truth(tb.Config, prefix)
	rsts, err := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
	if err != nil {
		t.Fatal(err)
	}
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", scanPortsFlag, "--rate", "20000", "--wait", "1500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	// Read at once: the target retransmits SYN-ACKs after XDP has
	// detached, and the scanner kernel rightly answers those with RST.
	after, err := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstTruth(t, results, open, closed)
	if after != rsts {
		t.Errorf("scanner kernel sent %d RSTs during the scan: XDP did not consume every reply", after-rsts)
	}
	wantProbes := uint64(1024 * len(scanPorts))
	if st.ProbesSent != wantProbes || st.Open != uint64(len(open)) || st.Closed != uint64(len(closed)) ||
		st.Filtered != wantProbes-uint64(len(open)+len(closed)) ||
		st.RingLost != 0 || st.TxErrors != 0 || st.RxMode != "xdp" || st.XDPMode == "" {
		t.Errorf("stats %+v: want %d probes, %d open, %d closed, no loss", st, wantProbes, len(open), len(closed))
	}
}

func TestShardsUnionIsTheFullScan(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.4.0/23"
	open, closed := truth(tb.Config, prefix)
	dir := t.TempDir()
	var all []ndjsonResult
	var probes uint64
	for shard := 0; shard < 3; shard++ {
		res, st, err := runScan(t, tb, dir, prefix, "-p", scanPortsFlag, "--rate", "20000", "--wait", "1500ms",
			"--seed", "42", "--shards", "3", "--shard", fmt.Sprint(shard))
		if err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		probes += st.ProbesSent
		all = append(all, res...)
	}
	if probes != 512*uint64(len(scanPorts)) {
		t.Errorf("shards sent %d probes in all, want %d", probes, 512*len(scanPorts))
	}
	checkAgainstTruth(t, all, open, closed)
}

func readNDJSON(t *testing.T, path string) []ndjsonResult {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []ndjsonResult
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" || output.IsPartHeader([]byte(line)) {
			continue
		}
		var r ndjsonResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("NDJSON %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func TestScanBadInput(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	held := filepath.Join(t.TempDir(), "held.gnmap")
	if err := os.WriteFile(held, []byte("# a grepable file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad CIDR", []string{"198.18.0.0/33", "-p", "80", "--allow", "198.18.0.0/15"}, `bad CIDR "198.18.0.0/33"`},
		{"reversed range", []string{"198.18.0.9-198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15"}, "is reversed"},
		{"port 0", []string{"198.18.0.1", "-p", "0", "--allow", "198.18.0.0/15"}, "out of range 1-65535"},
		{"port too big", []string{"198.18.0.1", "-p", "70000", "--allow", "198.18.0.0/15"}, "out of range 1-65535"},
		{"no ports", []string{"198.18.0.1", "--allow", "198.18.0.0/15"}, "-p PORTS or --ping is required"},
		{"bad protocol prefix", []string{"198.18.0.1", "-p", "S:80", "--allow", "198.18.0.0/15"}, "unknown protocol prefix"},
		{"pcap with UDP", []string{"198.18.0.1", "-p", "U:53", "--rx", "pcap", "--allow", "198.18.0.0/15"}, "need --rx xdp"},
		{"confirm with connect", []string{"198.18.0.1", "-p", "U:7", "--connect", "--confirm", "--allow", "198.18.0.0/15"}, "--confirm needs the XDP receive path"},
		{"ping-first without ports", []string{"198.18.0.1", "--ping-first", "--allow", "198.18.0.0/15"}, "--ping-first needs -p"},
		{"empty after excludes", []string{"198.18.0.0/24", "-p", "80", "--allow", "198.18.0.0/15", "--exclude", "198.18.0.0/16"}, "no targets left after --exclude"},
		{"blocked without allow", []string{"198.18.0.0/24", "-p", "80"}, "built-in blocklist"},
		{"unknown interface", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "-i", "eth9"}, "interface eth9: no such interface"},
		{"unresolvable gateway", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--source-ip", "198.19.0.1", "-i", "lo"}, "--router-mac"},
		{"rate 0", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--rate", "0"}, "--rate 0: must be a number of probes per second from 0.000278 (one an hour) up"},
		{"unwritable output", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "-o", "/nonexistent/dir/out"}, "-o /nonexistent/dir/out: cannot write"},
		{"bad format", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--format", "yaml"}, `unknown --format "yaml"`},
		{"--append-output to grepable", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--format", "grepable", "--append-output", "-o", held}, "holds a grepable document already"},
		// Without --rx pcap the scan falls back to --connect (connect_test.go).
		{"no capabilities", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "-o", "/dev/null", "--rx", "pcap"}, "scan --rx pcap needs CAP_NET_RAW (missing)"},
		{"IPv6 /64", []string{"2001:db8::/64", "-p", "80"}, `"2001:db8::/64" is 18446744073709551616 addresses: an IPv6 target may hold at most 2^32`},
		{"IPv4-mapped IPv6", []string{"::ffff:198.18.0.1", "-p", "80"}, "write the IPv4 form 198.18.0.1"},
		{"IPv6 with pcap", []string{"2001:2::1", "-p", "80", "--allow", "2001:2::/48", "--rx", "pcap"}, "IPv6 targets need --rx xdp"},
		{"IPv6 without a route", []string{"2001:2::1", "-p", "80", "--allow", "2001:2::/48"}, "no route to 2001:2::1"},
		{"bad source address", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--source-ip", "198.19.0.1,198.19.0.2"}, "at most one IPv4 and one"},
		{"relay without --tx xdp", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--tx-relay-cpu", "1"}, "--tx-relay-cpu relays the frames --tx xdp sends"},
		{"relay on a CPU that is not there", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--tx", "xdp", "--tx-relay-cpu", "4096"}, "send relay on CPU 4096: this machine has CPUs 0-"},
		{"bad shard", []string{"198.18.0.1", "-p", "80", "--allow", "198.18.0.0/15", "--shards", "2", "--shard", "2"}, "--shard 2 must be below --shards 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("ip", append([]string{"netns", "exec", tb.ScanNS(), binary, "scan"}, tc.args...)...)
			if tc.name == "no capabilities" {
				// An unprivileged user with no capabilities at all.
				cmd = exec.Command("ip", append([]string{"netns", "exec", tb.ScanNS(), "setpriv", "--reuid=65534", "--regid=65534",
					"--clear-groups", "--inh-caps=-all", "--bounding-set=-all", binary, "scan"}, tc.args...)...)
			}
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() == 0 {
				t.Fatalf("exit %v; output:\n%s", err, out)
			}
			if strings.Contains(string(out), "panic") || !strings.Contains(string(out), tc.want) {
				t.Fatalf("output %q lacks %q", out, tc.want)
			}
		})
	}
}

// TestPcapBaselineFindsTheSame: the libpcap receive path finds the same
// truth; the scanner kernel answers every SYN-ACK with a RST there, since
// nothing consumes the replies (the cost the XDP path removes).
func TestPcapBaselineFindsTheSame(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.12.0/23"
	open, closed := truth(tb.Config, prefix)
	before, _ := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", scanPortsFlag, "--rate", "20000", "--wait", "1500ms", "--rx", "pcap")
	if err != nil {
		t.Fatalf("scan --rx pcap: %v", err)
	}
	checkAgainstTruth(t, results, open, closed)
	after, _ := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
	if st.RxMode != "pcap" || st.XDPMode != "" {
		t.Errorf("stats say rx %q xdp %q, want pcap and no XDP", st.RxMode, st.XDPMode)
	}
	if after-before < uint64(len(open)) {
		t.Errorf("scanner kernel sent %d RSTs for %d SYN-ACKs: was XDP attached?", after-before, len(open))
	}
}

// scanFindsTruth scans prefix × scanPorts at rate (packets a second) and
// checks the results against the truth, which it returns with the stats.
func scanFindsTruth(t *testing.T, tb *testbed.Testbed, prefix, rate string) (open, closed map[pair]bool, st scan.Stats) {
	t.Helper()
	open, closed = truth(tb.Config, prefix)
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", scanPortsFlag, "--rate", rate, "--wait", "1s")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkAgainstTruth(t, results, open, closed)
	return open, closed, st
}

// TestSYNScanAgainstXDPResponder: the high-rate target mode follows the
// same ground truth as the kernel target.
func TestSYNScanAgainstXDPResponder(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Target: testbed.TargetXDP})
	open, closed, st := scanFindsTruth(t, tb, "198.18.16.0/22", "100000")
	c, err := tb.ResponderCounters()
	if err != nil {
		t.Fatal(err)
	}
	if c.TX != uint64(len(open)+len(closed)) {
		t.Errorf("responder sent %d replies, want %d", c.TX, len(open)+len(closed))
	}
	if st.Duplicates != 0 {
		t.Errorf("%d duplicates from a responder that never retransmits", st.Duplicates)
	}
}

// TestScanResolvesAMissingNeighbour: with the next hop's static entry
// deleted, the scan has the kernel resolve it (ARP) and still finds all.
func TestScanResolvesAMissingNeighbour(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	if out, err := exec.Command("ip", "-n", tb.ScanNS(), "neigh", "del", testbed.TargetIP.String(), "dev", testbed.ScanIf).CombinedOutput(); err != nil {
		t.Fatalf("delete neighbour: %v %s", err, out)
	}
	scanFindsTruth(t, tb, "198.18.20.0/24", "20000")
}
