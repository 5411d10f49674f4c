package e2e

import (
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/testbed"
)

// TestSendFromXDPFindsExactlyTheTruth: probes sent from the kernel (--tx
// xdp: BPF_PROG_RUN live frames) of every kind and both families find the
// same truth as the socket path, with every frame delivered.
func TestSendFromXDPFindsExactlyTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{TargetNAPI: true, UDPOpenPorts: []uint16{53, 123, 7}, ProhibitedFrom: 230,
		Range6: testbed.DefaultRange6})
	const prefix = "198.18.0.0/23"
	const prefix6 = "2001:2::/119"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 7},
		{proto: "udp", port: 161}, {proto: "icmp"}}
	want := mixedTruth(tb.Config, prefix, probes)
	for k, v := range mixedTruth(tb.Config, prefix6, probes) {
		want[k] = v
	}
	results, st, err := runScan(t, tb, t.TempDir(), prefix, prefix6, "-p", "22,9000,U:53,U:7,U:161", "--ping", "--tx", "xdp",
		"--rate", "20000", "--wait", "1500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	wantProbes := uint64(2 * 512 * len(probes))
	if st.TxMode != "xdp" || st.ProbesSent != wantProbes || st.TxErrors != 0 {
		t.Errorf("stats %+v: want %d probes sent from XDP, no tx errors", st, wantProbes)
	}
}

// relayCPU is where the relay tests put the transmit: the last CPU, so
// the scan's own thread keeps off it where there are two or more.
func relayCPU() string { return strconv.Itoa(runtime.NumCPU() - 1) }

// TestSendFromXDPThroughRelayFindsExactlyTheTruth: frames sent from the
// kernel through a relay CPU (--tx-relay-cpu: a cpumap kthread transmits
// them) find the same truth, every kind and both families, with every
// frame accounted for and the relay's CPU time reported.
func TestSendFromXDPThroughRelayFindsExactlyTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{TargetNAPI: true, UDPOpenPorts: []uint16{53, 7}, Range6: testbed.DefaultRange6})
	const prefix = "198.18.0.0/24"
	const prefix6 = "2001:2::/120"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 161}, {proto: "icmp"}}
	want := mixedTruth(tb.Config, prefix, probes)
	for k, v := range mixedTruth(tb.Config, prefix6, probes) {
		want[k] = v
	}
	results, st, err := runScan(t, tb, t.TempDir(), prefix, prefix6, "-p", "22,9000,U:53,U:161", "--ping", "--tx", "xdp",
		"--tx-relay-cpu", relayCPU(), "--rate", "20000", "--wait", "1500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	wantProbes := uint64(2 * 256 * len(probes))
	if st.TxMode != "xdp" || st.ProbesSent != wantProbes || st.TxErrors != 0 || st.TxRelayCPUS <= 0 {
		t.Errorf("stats %+v: want %d probes sent from XDP, no tx errors, the relay's CPU time", st, wantProbes)
	}
}

// TestSendFromXDPThroughRelayAtFullSpeed: with no rate limit the sender
// outruns the relay, whose queue (4096 frames) fills again and again; flow
// control must hold every probe back until there is room, so the scan
// still finds exactly the truth with no frame dropped.
func TestSendFromXDPThroughRelayAtFullSpeed(t *testing.T) {
	tb := upTestbed(t, testbed.Config{TargetNAPI: true})
	const prefix = "198.18.0.0/18"
	want := tb.Config.Tally(netip.MustParsePrefix(prefix), []uint16{22, 80})[testbed.Open]
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", "22,80", "--tx", "xdp", "--tx-relay-cpu", relayCPU(),
		"--rate", "100000000", "--wait", "2s")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	open := 0
	for _, r := range results {
		if r.State == "open" {
			open++
		}
	}
	if open != want || st.ProbesSent != 2*(1<<14) || st.TxErrors != 0 || st.Duplicates != 0 {
		t.Errorf("%d open of %d; stats %+v: want every probe sent, no tx errors, no duplicates", open, want, st)
	}
}

// TestSendFromXDPNeedsNAPIOnThePeer: on a veth whose peer cannot take XDP
// frames, the scan stops at the first batch with an error that says why and
// what to do, instead of reporting an empty network.
func TestSendFromXDPNeedsNAPIOnThePeer(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	_, _, stderr, err := runScanWrapped(t, tb, t.TempDir(), nil, "198.18.0.0/24", "-p", "22", "--tx", "xdp", "--rate", "20000", "--wait", "0s")
	if err == nil || !strings.Contains(stderr, "the veth peer took none of the first") || !strings.Contains(stderr, "--tx socket") {
		t.Fatalf("scan without NAPI on the peer: %v, stderr %q; want the no-NAPI error", err, stderr)
	}
}
