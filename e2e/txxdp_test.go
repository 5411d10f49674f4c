package e2e

import (
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
