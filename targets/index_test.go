package targets

import (
	"net/netip"
	"testing"
)

// TestRangeSetIndexInvertsAt: Index is At's inverse over both families, and
// refuses every address outside the set, including the ones between spans
// and the IPv4 address whose mapped form borders an IPv6 span.
func TestRangeSetIndexInvertsAt(t *testing.T) {
	tests := []struct {
		name    string
		ranges  []Range
		outside []string
	}{
		{"one IPv4 prefix", []Range{r4("198.18.0.0", "198.18.0.255")},
			[]string{"198.17.255.255", "198.18.1.0", "2001:2::1"}},
		{"IPv4 spans with gaps", []Range{r4("198.18.0.1", "198.18.0.9"), r4("198.18.0.20", "198.18.0.20"), r4("198.19.255.250", "198.19.255.255")},
			[]string{"198.18.0.0", "198.18.0.10", "198.18.0.19", "198.18.0.21", "198.19.255.249", "0.0.0.0"}},
		{"IPv6 across a 64-bit boundary", []Range{r4("2001:2::ffff:ffff:ffff:fff0", "2001:2:0:1::f")},
			[]string{"2001:2::ffff:ffff:ffff:ffef", "2001:2:0:1::10", "198.18.0.1"}},
		{"both families", []Range{r4("198.18.0.0", "198.18.0.3"), r4("2001:2::", "2001:2::3"), r4("2001:2::100", "2001:2::100")},
			[]string{"198.18.0.4", "2001:2::4", "2001:2::ff", "::ffff:198.18.0.1", "::"}},
		{"the whole IPv4 space", []Range{r4("0.0.0.0", "255.255.255.255")},
			[]string{"::", "::1", "2001:2::"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewRangeSet(tt.ranges)
			check := func(i uint64) {
				a := s.At(i)
				got, ok := s.Index(a)
				if !ok || got != i {
					t.Fatalf("Index(At(%d) = %s) = %d, %v", i, a, got, ok)
				}
			}
			n := s.Len()
			if n <= 4096 {
				for i := range n {
					check(i)
				}
			} else {
				for _, i := range []uint64{0, 1, n / 2, n - 2, n - 1, 0x12345678 % n} {
					check(i)
				}
			}
			for _, o := range tt.outside {
				a := netip.MustParseAddr(o)
				if i, ok := s.Index(a); ok {
					t.Errorf("Index(%s) = %d, true: want not in the set", a, i)
				}
			}
		})
	}
	if i, ok := (RangeSet{}).Index(netip.MustParseAddr("198.18.0.1")); ok {
		t.Errorf("empty set: Index = %d, true", i)
	}
}

// TestRangeSetIndexAllocatesNothing: it runs once per reply.
func TestRangeSetIndexAllocatesNothing(t *testing.T) {
	s := NewRangeSet([]Range{r4("198.18.0.0", "198.18.0.255"), r4("2001:2::", "2001:2::ff")})
	a, b := netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("2001:2::9")
	if n := testing.AllocsPerRun(1000, func() { s.Index(a); s.Index(b) }); n != 0 {
		t.Errorf("Index allocates %.1f times a call", n)
	}
}
