package loader_test

import (
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

// documented is what xdpscan's users hold: the verifier then runs without
// allow_ptr_leaks (no CAP_PERFMON), which refuses comparing pointers other
// than packet bounds checks, NULL checks of packet pointers among them, and
// subtracting one pointer from another (packet pointers too).
var documented = []int{capstest.BPF, capstest.NetAdmin, capstest.NetRaw}

// TestProgramsLoadWithDocumentedCapabilities loads the scan and capture
// programs, in every configuration the CLI can ask for, on a thread holding
// only CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW.
func TestProgramsLoadWithDocumentedCapabilities(t *testing.T) {
	bpftest.Require(t)
	scans := []struct {
		name string
		cfg  loader.ScanConfig
	}{
		{"ipv4+ipv6, udp echoes, reset", loader.ScanConfig{SourceIPv4: scanner4, SourceIPv6: scanner6, SourcePortLo: 40000, SourcePortHi: 40255,
			CookieKey: [2]uint64{1, 2}, RingBytes: 1 << 16, DedupEntries: 1 << 12, ResetOpen: true, UDPEchoes: probe.UDPEchoes()}},
		{"udp confirming retries (--confirm)", loader.ScanConfig{SourceIPv4: scanner4, SourceIPv6: scanner6, SourcePortLo: 40000, SourcePortHi: 40255,
			CookieKey: [2]uint64{1, 2}, RingBytes: 1 << 16, DedupEntries: 1 << 12, UDPEchoes: probe.UDPEchoes(), UDPConfirm: true}},
		{"monitor (no addresses)", loader.ScanConfig{SourcePortLo: 40000, SourcePortHi: 40255, RingBytes: 1 << 16, DedupEntries: 1 << 10}},
		{"kernel transmitter", loader.ScanConfig{SourceIPv4: scanner4, SourcePortLo: 40000, SourcePortHi: 40255,
			CookieKey: [2]uint64{1, 2}, RingBytes: 1 << 16, DedupEntries: 1 << 12, SendSlots: 256}},
	}
	for _, tc := range scans {
		t.Run("scan/"+tc.name, func(t *testing.T) {
			capstest.WithEffective(t, documented, func() {
				s, err := loader.LoadScan(tc.cfg)
				if err != nil {
					t.Fatalf("with %s only: %v", capstest.Names(documented), short(err))
				}
				s.Close()
			})
			// Beside another XDP program: the XDP program (its maps, the
			// transmitter) and the TC ingress variant, neither needing
			// CAP_NET_RAW.
			capstest.WithEffective(t, documented[:2], func() {
				s, err := loader.LoadScan(tc.cfg)
				if err != nil {
					t.Fatalf("with %s only: %v", capstest.Names(documented[:2]), short(err))
				}
				defer s.Close()
				tc, err := s.LoadTC()
				if err != nil {
					t.Fatalf("TC variant with %s only: %v", capstest.Names(documented[:2]), short(err))
				}
				tc.Close()
			})
		})
	}
	// Filters that reach each part of the translator: packet loads of
	// every width, indirect loads, the frame length, scratch memory
	// (a function, not inline code), and the shapes Specialize folds.
	for _, expr := range []string{"", "tcp port 80", "udp and dst port 9", "greater 100", "less 60", "len > 1000 or ip6",
		"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "icmp[icmptype] == icmp-echo", "vlan and tcp", "ip[2:2] > 40",
		"ip6 and tcp portrange 1000-2000", "net 198.18.0.0/15 and not port 22", "ether[0] & 1 != 0", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
		// Helper calls in the filter's function: an offset of too many
		// values for branches, the length in arithmetic.
		"ip[ip[9]] == 0", "len == 60", "len - 14 > 50 and udp"} {
		for _, countOnly := range []bool{false, true} {
			name := "capture/" + expr
			if countOnly {
				name += "/count-only"
			}
			t.Run(name, func(t *testing.T) {
				raw, err := filter.Compile(expr, 128)
				if err != nil {
					t.Fatal(err)
				}
				capstest.WithEffective(t, documented[:2], func() {
					c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, CountOnly: countOnly, RingBytes: 1 << 16})
					if err != nil {
						t.Fatalf("with %s only: %v", capstest.Names(documented[:2]), short(err))
					}
					c.Close()
				})
			})
		}
	}
}

// short keeps a verifier refusal's last lines, where the reason is.
func short(err error) string {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) > 12 {
		lines = append(lines[:2], append([]string{"..."}, lines[len(lines)-10:]...)...)
	}
	return strings.Join(lines, "\n")
}
