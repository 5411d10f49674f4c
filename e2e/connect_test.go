package e2e

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// checkStates compares results with want exactly, by state.
func checkStates(t *testing.T, results []ndjsonResult, want map[probeKey]string) {
	t.Helper()
	got := map[probeKey]string{}
	for _, r := range results {
		k := probeKey{netip.MustParseAddr(r.IP), r.Proto, r.Port}
		if _, dup := got[k]; dup {
			t.Errorf("duplicate result %+v", r)
		}
		got[k] = r.State
		if want[k] != r.State {
			t.Errorf("%s %s:%d: got %s, truth %q", r.Proto, r.IP, r.Port, r.State, want[k])
		}
	}
	for k, state := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("%s %s:%d: missing, truth %s", k.proto, k.addr, k.port, state)
		}
	}
}

func checkNoLeak(t *testing.T, st scan.Stats) {
	t.Helper()
	c := st.Connect
	if c == nil {
		t.Fatalf("stats %+v carry no connect figures", st)
	}
	if c.OpenFDsStart <= 0 || c.OpenFDsEnd != c.OpenFDsStart {
		t.Errorf("open descriptors %d before the scan, %d after: a socket leaked", c.OpenFDsStart, c.OpenFDsEnd)
	}
	if c.Errors != 0 {
		t.Errorf("%d probes failed: %s", c.Errors, c.FirstError)
	}
}

// TestConnectScanFindsTheSameTruth: the unprivileged connect scan, TCP and
// UDP, finds exactly what the SYN and UDP scans find, with refusals,
// timeouts (the silent slice) and ICMP prohibited answers in the mix; every
// socket is closed; and with RLIMIT_NOFILE at 256 it sizes its pool to fit
// and finds the same.
func TestConnectScanFindsTheSameTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{ProhibitedFrom: 230})
	const prefix = "198.18.0.0/23"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 443}, {proto: "tcp", port: 9000},
		{proto: "udp", port: 53}, {proto: "udp", port: 123}, {proto: "udp", port: 161}}
	want := mixedTruth(tb.Config, prefix, probes)
	args := []string{prefix, "-p", "22,443,9000,U:53,U:123,U:161", "--connect", "--rate", "20000", "--connect-timeout", "400ms"}

	results, st, _, err := runScanWrapped(t, tb, t.TempDir(), nil, args...)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	checkNoLeak(t, st)
	if st.RxMode != "connect" || st.Connect.Timeouts != 2*16*6 {
		t.Errorf("rx mode %q, %d timeouts: want connect, %d (the silent slice)", st.RxMode, st.Connect.Timeouts, 2*16*6)
	}

	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatalf("prlimit (util-linux) is missing: %v", err)
	}
	results, st, _, err = runScanWrapped(t, tb, t.TempDir(), []string{"prlimit", "--nofile=256:256"}, args...)
	if err != nil {
		t.Fatalf("scan with RLIMIT_NOFILE 256: %v", err)
	}
	checkStates(t, results, want)
	checkNoLeak(t, st)
	if st.Connect.NofileSoft != 256 || st.Connect.Workers > 256-st.Connect.OpenFDsStart {
		t.Errorf("RLIMIT_NOFILE %d, %d workers: the pool must fit in 256 descriptors", st.Connect.NofileSoft, st.Connect.Workers)
	}
}

// TestUnprivilegedScanFallsBackToConnect drops every capability and the
// root user: the scan says so and still finds the truth.
func TestUnprivilegedScanFallsBackToConnect(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is missing: %v", err)
	}
	dir := nobodyDir(t)
	const prefix = "198.18.0.0/26"
	want := mixedTruth(tb.Config, prefix, []probeKey{{proto: "tcp", port: 80}, {proto: "tcp", port: 81}})
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"}
	results, st, stderr, err := runScanWrapped(t, tb, dir, nobody, prefix, "-p", "80,81", "--connect-timeout", "300ms")
	if err != nil {
		t.Fatalf("unprivileged scan: %v", err)
	}
	if !strings.Contains(stderr, "falling back to --connect") {
		t.Errorf("no fallback notice in:\n%s", stderr)
	}
	checkStates(t, results, want)
	checkNoLeak(t, st)

	// ICMP echo has no unprivileged path: a clear refusal, exit 77.
	_, _, stderr, err = runScanWrapped(t, tb, dir, nobody, prefix, "--ping")
	if exitCode(err) != 77 || !strings.Contains(stderr, "--ping needs a raw socket") {
		t.Errorf("unprivileged --ping: exit %d, stderr %q", exitCode(err), stderr)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
