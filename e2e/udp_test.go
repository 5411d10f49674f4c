package e2e

import (
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// probeKey is one (address, protocol, port) result.
type probeKey struct {
	addr  netip.Addr
	proto string
	port  uint16
}

var protoNumbers = map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1}

// wantState is the result line the truth calls for ("" for no line).
func wantState(s testbed.State) (state, reason string) {
	switch s {
	case testbed.Open:
		return "open", ""
	case testbed.Closed:
		return "closed", ""
	case testbed.Prohibited:
		return "filtered", "admin-prohibited"
	case testbed.Alive:
		return "up", "echo-reply"
	}
	return "", ""
}

// mixedTruth is the result every probe of prefix × probes must give.
func mixedTruth(cfg testbed.Config, prefix string, probes []probeKey) map[probeKey]string {
	want := map[probeKey]string{}
	p := netip.MustParsePrefix(prefix)
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		for _, pr := range probes {
			if state, _ := wantState(cfg.ProbeState(protoNumbers[pr.proto], a, pr.port)); state != "" {
				want[probeKey{a, pr.proto, pr.port}] = state
			}
		}
	}
	return want
}

// TestUDPPingAndTCPFindExactlyTheTruth scans a /23 with TCP, UDP (a DNS and
// an NTP service, an echo service, closed ports) and ICMP echo at once,
// against a target with a silent slice and an admin-prohibited one.
func TestUDPPingAndTCPFindExactlyTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{UDPOpenPorts: []uint16{53, 123, 7}, ProhibitedFrom: 230})
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 123},
		{proto: "udp", port: 7}, {proto: "udp", port: 161}, {proto: "udp", port: 1900}, {proto: "icmp"}}
	// Only the silent slice (last octet >= 240) leaves UDP pairs unanswered.
	pingScanFindsTruth(t, tb, "198.18.0.0/23", probes, "22,9000,U:53,U:123,U:7,U:161,U:1900", 2*16*5)
}

// pingScanFindsTruth scans prefix with ports (a -p list) and --ping, and
// checks every state against the truth of probes and the stats against
// its counts, udpSilent UDP pairs left unanswered.
func pingScanFindsTruth(t *testing.T, tb *testbed.Testbed, prefix string, probes []probeKey, ports string, udpSilent uint64) {
	t.Helper()
	want := mixedTruth(tb.Config, prefix, probes)
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", ports, "--ping", "--rate", "20000", "--wait", "1500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	checkStats(t, st, want, udpSilent)
}

// checkStats compares a scan's figures with the truth's counts: every state,
// the UDP pairs with no answer, and nothing lost or forged.
func checkStats(t *testing.T, st scan.Stats, want map[probeKey]string, udpSilent uint64) {
	t.Helper()
	counts := map[string]uint64{}
	for _, s := range want {
		counts[s]++
	}
	if st.Open != counts["open"] || st.Closed != counts["closed"] || st.FilteredICMP != counts["filtered"] || st.Up != counts["up"] ||
		st.RingLost != 0 || st.InvalidCookie != 0 || st.UDPNoReply != udpSilent {
		t.Errorf("stats %+v: truth %v, %d UDP pairs silent", st, counts, udpSilent)
	}
}

// TestUDPScanUnderTheTargetsICMPLimit keeps the target's default ICMP rate
// limit: every open service is still found, closed ports are reported only
// as far as the target answered, never wrongly, and the scan completes and
// says how many probes got no answer.
func TestUDPScanUnderTheTargetsICMPLimit(t *testing.T) {
	tb := upTestbed(t, testbed.Config{ICMPLimit: true})
	const prefix = "198.18.0.0/24"
	probes := []probeKey{{proto: "udp", port: 53}, {proto: "udp", port: 161}}
	want := mixedTruth(tb.Config, prefix, probes)
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", "U:53,U:161", "--rate", "20000", "--wait", "1s")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	open, closed := 0, 0
	for _, r := range results {
		k := probeKey{netip.MustParseAddr(r.IP), r.Proto, r.Port}
		if want[k] != r.State {
			t.Errorf("%s %s:%d: got %s, truth %q", r.Proto, r.IP, r.Port, r.State, want[k])
		}
		if r.State == "open" {
			open++
		} else {
			closed++
		}
	}
	if open != 240 {
		t.Errorf("found %d open DNS services, truth 240", open)
	}
	if closed == 0 || closed >= 240 {
		t.Errorf("found %d closed of 240 under the default ICMP rate limit: want some, not all", closed)
	}
	if st.UDPNoReply != uint64(512-open-closed) {
		t.Errorf("udp_no_reply %d, want %d", st.UDPNoReply, 512-open-closed)
	}
	t.Logf("default ICMP limit: %d of 240 closed ports answered port unreachable", closed)
}

// TestPingFirstScansOnlyLiveHosts: discovery, then ports on the hosts that
// answered only.
func TestPingFirstScansOnlyLiveHosts(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	results, st, err := runScan(t, tb, t.TempDir(), "198.18.0.0/24", "-p", "22", "--ping-first", "--rate", "20000", "--wait", "500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	up, open := 0, 0
	for _, r := range results {
		switch {
		case r.Proto == "icmp" && r.State == "up":
			up++
		case r.Proto == "tcp" && r.State == "open" && r.Port == 22:
			open++
			if a := netip.MustParseAddr(r.IP).As4(); a[3] >= 240 {
				t.Errorf("%s reported open behind the filter", r.IP)
			}
		default:
			t.Errorf("unexpected result %+v", r)
		}
	}
	// The port scan's probes went to the 240 live hosts only.
	if up != 240 || open != 240 || st.ProbesSent != 240 {
		t.Fatalf("%d up, %d open, %d port probes: want 240 each", up, open, st.ProbesSent)
	}
}
