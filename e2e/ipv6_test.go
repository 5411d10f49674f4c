package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/testbed"
)

// TestIPv6ScanFindsExactlyTheTruth scans the IPv6 testbed with SYN, UDP
// (DNS, NTP, echo service, closed ports) and ICMPv6 echo at once, against a
// silent slice and an admin-prohibited one, with the target's MAC unknown
// at the start: the scan must find it by neighbour discovery.
func TestIPv6ScanFindsExactlyTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Range6: testbed.DefaultRange6, UDPOpenPorts: []uint16{53, 123, 7}, ProhibitedFrom: 230})
	if out, _ := exec.Command("ip", "-n", tb.ScanNS(), "-6", "neigh", "show", testbed.TargetIP6.String()).Output(); strings.Contains(string(out), "lladdr") {
		t.Fatalf("the target's IPv6 neighbour entry exists before the scan: %s", out)
	}
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 123},
		{proto: "udp", port: 7}, {proto: "udp", port: 161}, {proto: "icmp"}}
	pingScanFindsTruth(t, tb, "2001:2::/119", probes, "22,9000,U:53,U:123,U:7,U:161", 2*16*4)
	if out, _ := exec.Command("ip", "-n", tb.ScanNS(), "-6", "neigh", "show", testbed.TargetIP6.String()).Output(); !strings.Contains(string(out), testbed.TargetMAC.String()) {
		t.Errorf("no neighbour entry for the target after the scan: %q", out)
	}
}

// TestMixedFamiliesInOneScan: IPv4 and IPv6 targets in one run, one
// permutation, one XDP program validating both.
func TestMixedFamiliesInOneScan(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Range6: testbed.DefaultRange6})
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 7777}}
	want := mixedTruth(tb.Config, "198.18.7.0/24", probes)
	for k, v := range mixedTruth(tb.Config, "2001:2::700/120", probes) {
		want[k] = v
	}
	results, st, err := runScan(t, tb, t.TempDir(), "198.18.7.0/24,2001:2::700/120", "-p", "22,9000,U:53,U:7777",
		"--rate", "20000", "--wait", "1s")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	if st.ProbesSent != 2*256*4 {
		t.Errorf("%d probes sent, want %d", st.ProbesSent, 2*256*4)
	}
}

// TestIPv6ConnectAndPingFirst: the unprivileged path over IPv6 (TCP, and UDP
// with ICMPv6 errors read from IPV6_RECVERR's queue) and discovery first.
//
// The connect timeout is above 1s on purpose: on veth an ICMPv6 error to a
// SYN arrives while connect() still holds the socket's lock, and the kernel
// drops it (TcpExtLockDroppedIcmps); the SYN's retransmission after 1s
// gets the answer that counts. On a real link the error comes an RTT later.
func TestIPv6ConnectAndPingFirst(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Range6: testbed.DefaultRange6, ProhibitedFrom: 230})
	const prefix = "2001:2::/120"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 161}}
	want := mixedTruth(tb.Config, prefix, probes)
	results, st, _, err := runScanWrapped(t, tb, t.TempDir(), nil, prefix, "-p", "22,9000,U:53,U:161", "--connect",
		"--rate", "20000", "--connect-timeout", "1500ms")
	if err != nil {
		t.Fatalf("connect scan: %v", err)
	}
	checkStates(t, results, want)
	checkNoLeak(t, st)

	results, st, err = runScan(t, tb, t.TempDir(), prefix, "-p", "22", "--ping-first", "--rate", "20000", "--wait", "500ms")
	if err != nil {
		t.Fatalf("ping-first scan: %v", err)
	}
	// Ports are probed on the hosts that answered echo only: not on the
	// prohibited slice (its echo answer is admin prohibited) nor the silent.
	want = mixedTruth(tb.Config, prefix, []probeKey{{proto: "icmp"}, {proto: "tcp", port: 22}})
	for k := range want {
		if k.proto == "tcp" && want[probeKey{k.addr, "icmp", 0}] != "up" {
			delete(want, k)
		}
	}
	checkStates(t, results, want)
	if st.ProbesSent != 230 {
		t.Errorf("%d port probes, want 230 (the hosts up)", st.ProbesSent)
	}
}
