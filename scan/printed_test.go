package scan

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/targets"
)

// TestPairStatesMatchesAMap sets and reads states over a pair space in the
// dense array and in the hash (grown from one slot), against a Go map.
func TestPairStatesMatchesAMap(t *testing.T) {
	tests := []struct {
		name  string
		store func() *pairStates
	}{
		{"dense", func() *pairStates { return newPairStates(5000) }},
		{"hash", func() *pairStates { return &pairStates{hash: stateHash{slots: make([]uint64, 1)}} }},
		{"hash past denseMaxPairs", func() *pairStates { return newPairStates(denseMaxPairs + 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.store()
			want := map[uint64]uint8{}
			for i := uint64(0); i < 3000; i++ {
				idx := i * 7919 % 5000 // both halves of a byte, out of order
				c := uint8(i%5) + 1
				p.set(idx, c)
				want[idx] = c
				if i%3 == 0 { // overwrite: the last state is kept
					p.set(idx, 5-c/2)
					want[idx] = 5 - c/2
				}
			}
			for idx := uint64(0); idx < 5000; idx++ {
				if got := p.get(idx); got != want[idx] {
					t.Fatalf("pair %d: code %d, want %d", idx, got, want[idx])
				}
			}
		})
	}
}

// TestResolverStrayPairsByKey: a pair outside the scan's space (which the
// kernel should never report) and a state stateCode does not name are
// still kept exactly, in the map.
func TestResolverStrayPairsByKey(t *testing.T) {
	rv := newResolver(8, &Progress{}, func(Result) {})
	rv.keyByIndex(resolverPairs())
	stray := Result{Addr: netip.MustParseAddr("198.19.9.9"), Port: 53, Proto: "udp", State: StateOpen}
	odd := Result{Addr: netip.MustParseAddr("198.18.0.9"), Port: 53, Proto: "udp", State: "odd"}
	for _, r := range []Result{stray, odd} {
		rv.add(r, 40)
		rv.add(r, 40)
		other := r
		other.State = StateClosed
		rv.add(other, 40)
	}
	if len(rv.printed) != 2 || rv.conflicts != 2 {
		t.Fatalf("map holds %d pairs, %d conflicts; want 2, 2", len(rv.printed), rv.conflicts)
	}
}

// BenchmarkResolverAdd is the reply path's per-answer cost in the
// resolver: each answer a new open pair of a /16 × 4 ports, as a max-rate
// scan of the kernel target gives them. "by key" is the Go map it
// replaced.
func BenchmarkResolverAdd(b *testing.B) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.255.255")})
	ports := []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 80},
		{Proto: targets.ProtoTCP, Num: 443}, {Proto: targets.ProtoTCP, Num: 8080}}
	results := make([]Result, 0, 1<<18)
	for i := range 1 << 16 {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		for _, p := range ports {
			results = append(results, Result{Addr: a, Port: p.Num, Proto: "tcp", State: StateOpen, Reason: "syn-ack"})
		}
	}
	for _, byIndex := range []bool{false, true} {
		b.Run(fmt.Sprintf("by index %v", byIndex), func(b *testing.B) {
			b.ReportAllocs()
			var rv *resolver
			for i := 0; i < b.N; i++ {
				if i%len(results) == 0 {
					b.StopTimer()
					rv = newResolver(8, &Progress{}, func(Result) {})
					if byIndex {
						rv.keyByIndex(newSeenSet(set, ports))
					}
					b.StartTimer()
				}
				rv.add(results[i%len(results)], 40)
			}
		})
	}
}
