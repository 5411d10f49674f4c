package loader_test

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"golang.org/x/sys/unix"
)

// synAckFrom is an open port's answer from target (198.18.x.y:443).
func synAckFrom(target netip.Addr) []byte {
	c := cookie(scanner4, target, 40001, 443)
	return testpkt.Build(testpkt.Frame{Src: target, Dst: scanner4, TTL: 61,
		L4: testpkt.TCP(443, 40001, 777, c+1, "SA")})
}

// sendPairs runs one SYN-ACK from each of n targets through s and returns
// how many events came out (the ring is drained as it goes).
func sendPairs(t *testing.T, s *loader.Scan, n int) int {
	t.Helper()
	events := 0
	for i := range n {
		target := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		if got := run(t, s, synAckFrom(target)); got != xdpDrop {
			t.Fatalf("reply from %s: verdict %d, want XDP_DROP", target, got)
		}
		if i%512 == 511 {
			events += len(drain(t, s))
		}
	}
	return events + len(drain(t, s))
}

// TestScanDedupTable checks the fingerprint table's promise: a new pair is
// always reported, and a table sized for the scan reports no pair twice.
func TestScanDedupTable(t *testing.T) {
	tests := []struct {
		name      string
		entries   uint32 // the table's size, in pairs
		perCPU    bool   // a table per CPU (the test runs pinned to one)
		pairs     int
		wantDups  uint64 // on a second pass over the same pairs
		wantAgain int    // events on that second pass
	}{
		{name: "sized for the scan: every repeat is a duplicate", entries: 1 << 12, pairs: 4000, wantDups: 4000},
		{name: "per CPU, sized for the scan: every repeat on the CPU is a duplicate", entries: 1 << 12, perCPU: true, pairs: 4000, wantDups: 4000},
		{name: "per CPU, overfull: every new pair is still reported", entries: 64, perCPU: true, pairs: 3000},
		// 64 buckets of 4 for 3000 pairs: most are evicted, and come back as
		// events, never as lost replies.
		{name: "overfull: every new pair is still reported", entries: 64, pairs: 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bpftest.Require(t)
			if tt.perCPU {
				// One CPU's table: the repeats must come on the same CPU.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var set, old unix.CPUSet
				if err := unix.SchedGetaffinity(0, &old); err != nil {
					t.Fatal(err)
				}
				set.Set(0)
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					t.Fatal(err)
				}
				defer unix.SchedSetaffinity(0, &old)
			}
			s, err := loader.LoadScan(loader.ScanConfig{
				SourceIPv4: scanner4, SourcePortLo: 40000, SourcePortHi: 40255,
				CookieKey: [2]uint64(testKey), RingBytes: 1 << 16, DedupEntries: tt.entries, DedupPerCPU: tt.perCPU,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := sendPairs(t, s, tt.pairs); got != tt.pairs {
				t.Fatalf("first pass: %d events for %d new pairs", got, tt.pairs)
			}
			expect(t, "duplicates after the first pass", counters(t, s).Duplicates, 0)
			again := sendPairs(t, s, tt.pairs)
			dups := counters(t, s).Duplicates
			if tt.wantDups != 0 {
				expect(t, "duplicates on the second pass", dups, tt.wantDups)
				if again != 0 {
					t.Errorf("second pass: %d events, want 0", again)
				}
				return
			}
			if uint64(again)+dups != uint64(tt.pairs) {
				t.Errorf("second pass: %d events + %d duplicates, want %d replies accounted for", again, dups, tt.pairs)
			}
			if again < tt.pairs/2 {
				t.Errorf("second pass: %d events; an overfull table should have evicted most of %d pairs", again, tt.pairs)
			}
		})
	}
}
