package engine

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		wantErr string
	}{
		{"198.18.0.7", Range{0xc6120007, 0xc6120007}, ""},
		{"198.18.0.0/24", Range{0xc6120000, 0xc61200ff}, ""},
		{"198.18.0.77/24", Range{0xc6120000, 0xc61200ff}, ""},
		{"198.18.0.1-198.18.0.50", Range{0xc6120001, 0xc6120032}, ""},
		{"0.0.0.0/0", Range{0, 0xffffffff}, ""},
		{"198.18.0.0/33", Range{}, "bad CIDR"},
		{"198.18.0.9-198.18.0.1", Range{}, "is reversed"},
		{"198.18.0", Range{}, "bad address"},
		{"2001:db8::1", Range{}, "is IPv6 (1 addresses)"},
		{"2001:db8::/64", Range{}, "18446744073709551616 addresses): xdpscan scans IPv4 targets only for now; and no prefix this wide"},
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
		a := set.At(i)
		if a&0xff >= 16 && a&0xff < 32 || a&0xff == 255 {
			t.Fatalf("excluded address %s produced", U32ToAddr(a))
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

func TestShardsAreDisjointAndComplete(t *testing.T) {
	set := NewRangeSet([]Range{{0xc6120000, 0xc61201ff}})
	cfg := ScanConfig{Targets: set, Ports: []Port{{ProtoTCP, 22}, {ProtoTCP, 80}, {ProtoTCP, 443}}, SportLo: 40000, SportHi: 40003, Seed: 9}
	seen := map[[2]uint32]int{}
	for shard := uint64(0); shard < 3; shard++ {
		c := cfg
		c.Shards, c.Shard = 3, shard
		var got uint64
		EachProbe(c, func(a netip.Addr, port Port, _ uint16) error {
			seen[[2]uint32{addrToU32(a), uint32(port.Num)}]++
			got++
			return nil
		})
		if got != c.TotalProbes() {
			t.Errorf("shard %d sent %d, TotalProbes says %d", shard, got, c.TotalProbes())
		}
	}
	if len(seen) != 512*3 {
		t.Fatalf("union covers %d pairs, want %d", len(seen), 512*3)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("pair %v sent %d times across shards", p, n)
		}
	}
}

func TestRangeSetAtAndContains(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var rs []Range
	for i := 0; i < 50; i++ {
		lo := rng.Uint32N(1 << 20)
		rs = append(rs, Range{lo, lo + rng.Uint32N(300)})
	}
	set := NewRangeSet(rs)
	prev := int64(-1)
	for i := uint64(0); i < set.Len(); i++ {
		a := set.At(i)
		if int64(a) <= prev || !set.Contains(a) {
			t.Fatalf("At(%d) = %d: not ascending or not contained", i, a)
		}
		prev = int64(a)
	}
}

func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{"198.18.0.0/24", "198.18.0.1-198.18.0.9", "10.0.0.1,10.0.0.2", "::1", "1.2.3.4/40", "a-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseTargetList(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Lo > r.Hi {
				t.Fatalf("%q gave reversed range %v", s, r)
			}
		}
		set := NewRangeSet(rs)
		var total uint64
		for _, r := range set.Ranges() {
			total += r.size()
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
		for i, p := range ports {
			if p.Num == 0 || (p.Proto != ProtoTCP && p.Proto != ProtoUDP) || i > 0 && comparePorts(ports[i-1], p) >= 0 {
				t.Fatalf("%q gave %v: zero, unknown protocol, unsorted or repeated", s, ports)
			}
			// Every port prints back in syntax that parses to itself.
			again, err := ParsePortSpec(p.String())
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%v prints as %q, which parses to %v (%v)", p, p.String(), again, err)
			}
		}
	})
}
