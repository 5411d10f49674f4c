package targets

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func r4(lo, hi string) Range { return Range{netip.MustParseAddr(lo), netip.MustParseAddr(hi)} }

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		wantErr string
	}{
		{"198.18.0.7", r4("198.18.0.7", "198.18.0.7"), ""},
		{"198.18.0.0/24", r4("198.18.0.0", "198.18.0.255"), ""},
		{"198.18.0.77/24", r4("198.18.0.0", "198.18.0.255"), ""},
		{"198.18.0.1-198.18.0.50", r4("198.18.0.1", "198.18.0.50"), ""},
		{"0.0.0.0/0", r4("0.0.0.0", "255.255.255.255"), ""},
		{"198.18.0.0/33", Range{}, "bad CIDR"},
		{"198.18.0.9-198.18.0.1", Range{}, "is reversed"},
		{"198.18.0", Range{}, "bad address"},
		{"2001:2::1", r4("2001:2::1", "2001:2::1"), ""},
		{"2001:2::/120", r4("2001:2::", "2001:2::ff"), ""},
		{"2001:2::ff/120", r4("2001:2::", "2001:2::ff"), ""},
		{"2001:2::1-2001:2::1:0", r4("2001:2::1", "2001:2::1:0"), ""},
		{"2001:2::/96", r4("2001:2::", "2001:2::ffff:ffff"), ""},
		{"198.18.0.1-2001:2::1", Range{}, "mixes IPv4 and IPv6"},
		{"::ffff:198.18.0.1", Range{}, "IPv4-mapped IPv6 address: write the IPv4 form 198.18.0.1"},
		{"::ffff:198.18.0.0/120", Range{}, "IPv4-mapped IPv6 prefix"},
		{"fe80::1%eth0", Range{}, "has a zone"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestReadTargetsNamesTheLine(t *testing.T) {
	_, err := ReadTargets(strings.NewReader("198.18.0.0/24 # lab\n\n198.18.1.300\n"), "hosts.txt")
	if err == nil || !strings.HasPrefix(err.Error(), "hosts.txt:3: ") {
		t.Fatalf("err %v, want it to name hosts.txt:3", err)
	}
}

func TestResolveBlocklistAndExcludes(t *testing.T) {
	r := func(s string) []Range { rs, _ := ParseTargetList(s); return rs }
	if _, err := (TargetSpec{Include: r("198.18.0.0/24")}).Resolve(); err == nil || !strings.Contains(err.Error(), "--allow 198.18.0.0/15") {
		t.Fatalf("blocked range: %v", err)
	}
	set, err := TargetSpec{Include: r("198.18.0.0/24"), Allow: r("198.18.0.0/15"), Exclude: r("198.18.0.16/28,198.18.0.255")}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 256-16-1 {
		t.Fatalf("len %d, want %d", set.Len(), 256-17)
	}
	for i := uint64(0); i < set.Len(); i++ {
		a := AddrToU32(set.At(i))
		if a&0xff >= 16 && a&0xff < 32 || a&0xff == 255 {
			t.Fatalf("excluded address %s produced", u32ToAddr(a))
		}
	}
	if _, err := (TargetSpec{Include: r("198.18.0.0/24"), Allow: r("198.18.0.0/25")}).Resolve(); err == nil {
		t.Fatal("half-allowed range accepted")
	}
}

// TestPermutationIsABijection: every position maps to a distinct element,
// and shards partition the positions.
func TestPermutationIsABijection(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 7, 1000, 65536, 100003} {
		for seed := uint64(0); seed < 3; seed++ {
			p := NewPermutation(n, seed)
			seen := make([]bool, n)
			for i := uint64(0); i < n; i++ {
				x := p.At(i)
				if x >= n || seen[x] {
					t.Fatalf("n=%d seed=%d: position %d gives %d (repeat or out of range)", n, seed, i, x)
				}
				seen[x] = true
			}
		}
	}
	if NewPermutation(1000, 1).At(0) == NewPermutation(1000, 2).At(0) && NewPermutation(1000, 1).At(1) == NewPermutation(1000, 2).At(1) {
		t.Error("different seeds give the same order")
	}
}

func TestRangeSetAtAndContains(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var rs []Range
	for i := 0; i < 50; i++ {
		lo := rng.Uint32N(1 << 20)
		rs = append(rs, Range{u32ToAddr(lo), u32ToAddr(lo + rng.Uint32N(300))})
		// IPv6 ranges straddling a 64-bit word boundary, to test the carry.
		lo6 := u128{0x20010002_00000000, ^uint64(0) - uint64(rng.Uint32N(1<<10))}
		rs = append(rs, span{lo6, lo6.add(uint64(rng.Uint32N(2000)))}.rng())
	}
	set := NewRangeSet(rs)
	var prev netip.Addr
	seen6 := false
	for i := uint64(0); i < set.Len(); i++ {
		a := set.At(i)
		if i > 0 && !prev.Less(a) || !set.Contains(a) {
			t.Fatalf("At(%d) = %s: not ascending or not contained", i, a)
		}
		if seen6 && a.Is4() {
			t.Fatalf("At(%d) = %s: IPv4 after IPv6", i, a)
		}
		seen6 = seen6 || a.Is6()
		prev = a
	}
	if set.LenIPv4()+set.LenIPv6() != set.Len() || set.LenIPv4() == 0 || set.LenIPv6() == 0 {
		t.Fatalf("family counts %d + %d, total %d", set.LenIPv4(), set.LenIPv6(), set.Len())
	}
	for _, out := range []string{"2001:2::1", "198.18.0.1", "255.255.255.255", "::ffff:1"} {
		a := netip.MustParseAddr(out)
		if set.Contains(a) {
			t.Fatalf("%s reported contained", a)
		}
	}
}

// TestRangeSetSubtractAcrossFamilies: excludes of one family leave the
// other alone, and subtraction is exact at range edges.
func TestRangeSetSubtractAcrossFamilies(t *testing.T) {
	tests := []struct {
		name            string
		include, remove string
		want            []Range
	}{
		{"v6 hole", "2001:2::/120", "2001:2::10-2001:2::1f",
			[]Range{r4("2001:2::", "2001:2::f"), r4("2001:2::20", "2001:2::ff")}},
		{"v6 edges", "2001:2::/120", "2001:2::,2001:2::ff", []Range{r4("2001:2::1", "2001:2::fe")}},
		{"v4 excluded, v6 kept", "198.18.0.0/24,2001:2::/126", "198.18.0.0/16", []Range{r4("2001:2::", "2001:2::3")}},
		{"adjacent v4 and mapped end never merge", "255.255.255.255,::ffff:1:0", "", nil},
		{"across the 64-bit word", "2001:2::ffff:ffff:ffff:fff0-2001:2:0:1::10", "2001:2:0:1::",
			[]Range{r4("2001:2::ffff:ffff:ffff:fff0", "2001:2::ffff:ffff:ffff:ffff"), r4("2001:2:0:1::1", "2001:2:0:1::10")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inc, err := ParseTargetList(tc.include)
			if err != nil {
				if tc.want == nil {
					return // the mapped form is refused: nothing to merge
				}
				t.Fatal(err)
			}
			rem, err := ParseTargetList(tc.remove)
			if err != nil {
				t.Fatal(err)
			}
			got := NewRangeSet(inc).Subtract(NewRangeSet(rem)).Ranges()
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestResolveIPv6(t *testing.T) {
	r := func(s string) []Range { rs, _ := ParseTargetList(s); return rs }
	if _, err := (TargetSpec{Include: r("2001:2::/120")}).Resolve(); err == nil || !strings.Contains(err.Error(), "--allow 2001:2::/48") {
		t.Fatalf("benchmarking range not blocked: %v", err)
	}
	if _, err := (TargetSpec{Include: r("fe80::1")}).Resolve(); err == nil || !strings.Contains(err.Error(), "link local") {
		t.Fatalf("link local not blocked: %v", err)
	}
	set, err := TargetSpec{Include: r("198.18.0.0/30,2001:2::/126"), Allow: r("198.18.0.0/15,2001:2::/48")}.Resolve()
	if err != nil || set.LenIPv4() != 4 || set.LenIPv6() != 4 {
		t.Fatalf("mixed set: %v, %d+%d", err, set.LenIPv4(), set.LenIPv6())
	}
	for _, tc := range []struct{ target, want string }{
		{"2001:2::/95", `"2001:2::/95" is 8589934592 addresses: an IPv6 target may hold at most 2^32 (a /96)`},
		{"2001:db8::/64", `"2001:db8::/64" is 18446744073709551616 addresses`},
		{"::/0", `"::/0" is 340282366920938463463374607431768211456 addresses`},
		{"2001:2::-2001:3::", `"2001:2::-2001:3::" is 79228162514264337593543950337 addresses`},
	} {
		if _, err := (TargetSpec{Include: r(tc.target), Allow: r("::/0")}).Resolve(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.target, err, tc.want)
		}
	}
	var wide []Range
	for i := 0; i < 3; i++ {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, byte(i)})
		wide = append(wide, prefixRange(netip.PrefixFrom(a, 96)))
	}
	if _, err := (TargetSpec{Include: wide, Allow: r("2001:2::/48")}).Resolve(); err == nil || !strings.Contains(err.Error(), "hold 12884901888 addresses together") {
		t.Fatalf("three /96 accepted: %v", err)
	}
}

func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{"198.18.0.0/24", "198.18.0.1-198.18.0.9", "10.0.0.1,10.0.0.2", "::1", "1.2.3.4/40", "a-b", "2001:2::/120", "2001:2::1-2001:2::9", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseTargetList(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Hi.Less(r.Lo) || r.Lo.Is4() != r.Hi.Is4() {
				t.Fatalf("%q gave reversed or mixed range %v", s, r)
			}
		}
		set := NewRangeSet(rs)
		var total uint64
		for _, r := range set.Ranges() {
			total += span{toU128(r.Lo), toU128(r.Hi)}.size()
			if !set.Contains(r.Lo) || !set.Contains(r.Hi) {
				t.Fatalf("%q: %v not contained", s, r)
			}
		}
		if total != set.Len() {
			t.Fatalf("%q: Len %d, ranges hold %d", s, set.Len(), total)
		}
	})
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"22,80,443", "8000-8100", "0", "65536", "10-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParsePorts(s)
		if err != nil {
			return
		}
		for i, p := range ports {
			if p == 0 || i > 0 && ports[i-1] >= p {
				t.Fatalf("%q gave %v: zero, unsorted or repeated", s, ports)
			}
		}
	})
}

func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"22,80,U:53", "T:1-10,u:161", "U:", "X:80", "U:70000", "U:5-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParsePortSpec(s)
		if err != nil {
			return
		}
		printed := make([]string, len(ports))
		for i, p := range ports {
			if p.Num == 0 || (p.Proto != ProtoTCP && p.Proto != ProtoUDP) || i > 0 && comparePorts(ports[i-1], p) >= 0 {
				t.Fatalf("%q gave %v: zero, unknown protocol, unsorted or repeated", s, ports)
			}
			printed[i] = p.String()
		}
		// Every port prints back in syntax that parses to itself: the
		// list printed parses to the same list. One parse, not one a
		// port: "T:1-11610" re-parsed port by port took over the fuzz
		// engine's 10 s hang limit with coverage instrumentation.
		again, err := ParsePortSpec(strings.Join(printed, ","))
		if err != nil || !slices.Equal(again, ports) {
			t.Fatalf("%q gave %d ports, which print as a spec that parses to %d (%v)", s, len(ports), len(again), err)
		}
	})
}

// TestReadTargetsLongLine: a line past MaxTargetLine is refused with its
// line number (bufio's bare "token too long" named neither).
func TestReadTargetsLongLine(t *testing.T) {
	in := "198.18.0.1\n198.18.0.2\n" + strings.Repeat("1", 2200000) + "\n198.18.0.3\n"
	_, err := ReadTargets(strings.NewReader(in), "big.txt")
	want := "big.txt:3: line longer than 65536 bytes"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err %v, want it to start %q", err, want)
	}
	// A line of exactly the limit is read (and judged on its content).
	line := "198.18.0.1 #" + strings.Repeat("x", MaxTargetLine-len("198.18.0.1 #"))
	rs, err := ReadTargets(strings.NewReader(line+"\n"), "edge.txt")
	if err != nil || len(rs) != 1 {
		t.Fatalf("a %d-byte line: %v, %v", len(line), rs, err)
	}
}
