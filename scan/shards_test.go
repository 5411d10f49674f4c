package scan

import (
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/targets"
)

func TestShardsAreDisjointAndComplete(t *testing.T) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.1.255")})
	cfg := Config{Targets: set, Ports: []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 80}, {Proto: targets.ProtoTCP, Num: 443}}, SportLo: 40000, SportHi: 40003, Seed: 9}
	seen := map[[2]uint32]int{}
	for shard := uint64(0); shard < 3; shard++ {
		c := cfg
		c.Shards, c.Shard = 3, shard
		var got uint64
		EachProbe(c, func(a netip.Addr, port targets.Port, _ uint16) error {
			seen[[2]uint32{targets.AddrToU32(a), uint32(port.Num)}]++
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

func r4(lo, hi string) targets.Range {
	return targets.Range{Lo: netip.MustParseAddr(lo), Hi: netip.MustParseAddr(hi)}
}
