package scan

import (
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/targets"
)

var seenPorts = []targets.Port{
	{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 443}, {Proto: targets.ProtoTCP, Num: 65535},
	{Proto: targets.ProtoUDP, Num: 22}, {Proto: targets.ProtoUDP, Num: 53}, targets.Echo,
}

// TestSeenSetAdmitsEveryProbedPairOnce walks every probe a scan sends
// (all passes of --retries, every --shards share) as if each were answered,
// in the bitmap and in the hash, and checks that each pair is admitted
// exactly once and every other reply is counted as a duplicate.
func TestSeenSetAdmitsEveryProbedPairOnce(t *testing.T) {
	tests := []struct {
		name      string
		ranges    []targets.Range
		retries   int
		shards    uint64
		bitmapMax uint64
	}{
		{"IPv4 bitmap", []targets.Range{r4("198.18.0.0", "198.18.0.255")}, 0, 1, bitmapMaxPairs},
		{"IPv4 with gaps, retries", []targets.Range{r4("198.18.0.1", "198.18.0.9"), r4("198.18.3.0", "198.18.3.40"), r4("198.19.255.255", "198.19.255.255")}, 2, 1, bitmapMaxPairs},
		{"IPv6 across 64 bits, shards", []targets.Range{r4("2001:2::ffff:ffff:ffff:ff00", "2001:2:0:1::ff")}, 0, 3, bitmapMaxPairs},
		{"both families, retries and shards", []targets.Range{r4("198.18.0.0", "198.18.0.99"), r4("2001:2::", "2001:2::63")}, 1, 2, bitmapMaxPairs},
		{"both families in the hash", []targets.Range{r4("198.18.0.0", "198.18.1.255"), r4("2001:2::1:0", "2001:2::1:1ff")}, 1, 3, 0},
		{"the hash growing from one slot", []targets.Range{r4("198.18.0.0", "198.18.3.255")}, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := targets.NewRangeSet(tt.ranges)
			seen := newSeenSetLimit(set, seenPorts, tt.bitmapMax)
			if tt.bitmapMax == 0 {
				if seen.bits != nil {
					t.Fatal("want the hash, got a bitmap")
				}
				seen.hash = newIndexHash(1)
			} else if seen.bits == nil {
				t.Fatal("want a bitmap, got the hash")
			}
			admitted := map[strayPair]int{}
			var replies uint64
			for shard := range tt.shards {
				cfg := Config{Targets: set, Ports: seenPorts, SportLo: 40000, SportHi: 40255, Seed: 7, Retries: tt.retries, Shards: tt.shards, Shard: shard,
					Path: route.Path{Src: netip.MustParseAddr("198.19.0.1")}, Path6: route.Path{Src: netip.MustParseAddr("2001:2:0:ffff::1")}}
				err := EachProbe(cfg, func(a netip.Addr, port targets.Port, _ uint16) error {
					proto := port.Proto
					if port.Proto == targets.ProtoICMP && a.Is6() && replies%2 == 0 {
						proto = targets.ProtoICMPv6 // either number names the echo probe
					}
					replies++
					if seen.admit(a, proto, port.Num) {
						admitted[strayPair{a, port.Proto, port.Num}]++
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			pairs := set.Len() * uint64(len(seenPorts))
			if uint64(len(admitted)) != pairs {
				t.Errorf("admitted %d distinct pairs, want all %d", len(admitted), pairs)
			}
			for p, n := range admitted {
				if n != 1 {
					t.Errorf("pair %v admitted %d times", p, n)
				}
			}
			if want := replies - pairs; seen.Duplicates != want {
				t.Errorf("Duplicates = %d, want %d (%d replies, %d pairs)", seen.Duplicates, want, replies, pairs)
			}
			if seen.stray != nil {
				t.Errorf("%d probed pairs taken as outside the scan", len(seen.stray))
			}
		})
	}
}

// TestSeenSetIndexIsDense: the index of every pair is below targets ×
// ports and no two pairs share one, so the bitmap is exactly large enough.
func TestSeenSetIndexIsDense(t *testing.T) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.250", "198.18.1.4"), r4("2001:2::fffe", "2001:2::1:1")})
	seen := newSeenSet(set, seenPorts)
	used := make([]bool, seen.pairs)
	for i := range set.Len() {
		for _, p := range seenPorts {
			idx, ok := seen.index(set.At(i), p.Proto, p.Num)
			if !ok || idx >= seen.pairs || used[idx] {
				t.Fatalf("index(%s, %v) = %d, %v: want a fresh index below %d", set.At(i), p, idx, ok, seen.pairs)
			}
			used[idx] = true
		}
	}
	if len(seen.bits)*64 < len(used) || len(seen.bits)*64 >= len(used)+64 {
		t.Errorf("bitmap of %d words for %d pairs", len(seen.bits), len(used))
	}
}

// TestSeenSetStrayPairs: a reply for a pair the scan never probed (another
// port, an address outside the targets) is still printed once only.
func TestSeenSetStrayPairs(t *testing.T) {
	seen := newSeenSet(targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.0.255")}), seenPorts)
	tests := []struct {
		name  string
		addr  string
		proto uint8
		port  uint16
	}{
		{"port not probed", "198.18.0.1", targets.ProtoTCP, 80},
		{"UDP port probed only over TCP", "198.18.0.1", targets.ProtoUDP, 443},
		{"address outside the targets", "198.18.1.0", targets.ProtoTCP, 22},
		{"IPv6 address", "2001:2::1", targets.ProtoTCP, 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if _, ok := seen.index(a, tt.proto, tt.port); ok {
				t.Fatalf("index accepts a pair outside the scan")
			}
			before := seen.Duplicates
			if !seen.admit(a, tt.proto, tt.port) {
				t.Fatal("first reply refused")
			}
			if seen.admit(a, tt.proto, tt.port) {
				t.Fatal("second reply admitted")
			}
			if seen.Duplicates != before+1 {
				t.Errorf("Duplicates grew by %d, want 1", seen.Duplicates-before)
			}
		})
	}
}

// TestSeenSetBetterAnswerHook: the hook the cookie work will fill sees
// only replies for pairs already printed, by their index, and may let one
// through; nil keeps first-wins.
func TestSeenSetBetterAnswerHook(t *testing.T) {
	seen := newSeenSet(targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.0.255")}), seenPorts)
	a := netip.MustParseAddr("198.18.0.7")
	want, _ := seen.index(a, targets.ProtoUDP, 53)
	var asked []uint64
	seen.better = func(idx uint64) bool { asked = append(asked, idx); return len(asked) == 1 }
	for i, wantAdmit := range []bool{true, true, false} {
		if got := seen.admit(a, targets.ProtoUDP, 53); got != wantAdmit {
			t.Errorf("reply %d: admit = %v, want %v", i, got, wantAdmit)
		}
	}
	if len(asked) != 2 || asked[0] != want || asked[1] != want {
		t.Errorf("better asked about %v, want [%d %d]", asked, want, want)
	}
	if seen.Duplicates != 1 {
		t.Errorf("Duplicates = %d, want 1", seen.Duplicates)
	}
}

// TestHandleEventsCountsWhatItPrints: replies repeated (a kernel table
// that evicted, or two CPUs racing) are emitted once, and the progress
// figures are the results emitted.
func TestHandleEventsCountsWhatItPrints(t *testing.T) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.0.255"), r4("2001:2::", "2001:2::ff")})
	seen := newClassSeen(set, seenPorts)
	var progress Progress
	var emitted []Result
	emit := func(r Result) { emitted = append(emitted, r) }
	rv := newResolver(8, &progress, emit)
	ev := func(addr string, proto uint8, port uint16, kind uint8) bpf.ScanScanEvent {
		a := netip.MustParseAddr(addr)
		e := bpf.ScanScanEvent{Proto: proto, Port: port, Kind: kind, Family: 4}
		if a.Is6() {
			e.Family = 6
			e.Addr = a.As16()
		} else {
			copy(e.Addr[:], a.AsSlice())
		}
		return e
	}
	batch := []bpf.ScanScanEvent{
		ev("198.18.0.1", targets.ProtoTCP, 22, probe.ReplyOpen),
		ev("198.18.0.1", targets.ProtoTCP, 443, probe.ReplyClosed),
		ev("198.18.0.1", targets.ProtoTCP, 22, probe.ReplyOpen), // a retransmission
		ev("2001:2::5", targets.ProtoUDP, 53, probe.ReplyOpen),
		ev("2001:2::5", targets.ProtoICMP, 0, probe.ReplyAlive),
		ev("2001:2::5", targets.ProtoICMP, 0, probe.ReplyAlive),
		ev("198.18.0.9", targets.ProtoUDP, 22, probe.ReplyFiltered),
		ev("198.18.0.1", targets.ProtoTCP, 443, probe.ReplyClosed),
		ev("198.18.0.2", targets.ProtoTCP, 22, 99), // a kind this build does not know: not marked seen
		ev("198.18.0.2", targets.ProtoTCP, 22, probe.ReplyOpen),
	}
	handleEvents(batch, clock.NewMono(), seen, rv)
	// The same batch again, as a second CPU's copies would come.
	handleEvents(batch, clock.NewMono(), seen, rv)
	rv.flush() // the weak answer (an ICMP error quoting an empty UDP probe) is held until the end
	if len(emitted) != 6 {
		t.Fatalf("emitted %d results, want 6: %+v", len(emitted), emitted)
	}
	counted := progress.Open.Load() + progress.Closed.Load() + progress.Filtered.Load() + progress.Up.Load()
	if counted != uint64(len(emitted)) || progress.Replies.Load() != uint64(len(emitted)) {
		t.Errorf("progress counts %d states and %d replies for %d lines", counted, progress.Replies.Load(), len(emitted))
	}
	if progress.Open.Load() != 3 || progress.Closed.Load() != 1 || progress.Filtered.Load() != 1 || progress.Up.Load() != 1 {
		t.Errorf("open %d closed %d filtered %d up %d, want 3 1 1 1", progress.Open.Load(), progress.Closed.Load(), progress.Filtered.Load(), progress.Up.Load())
	}
	if seen.duplicates() != 12 { // 3 in the first batch, all 9 known kinds in the second
		t.Errorf("Duplicates = %d, want 12", seen.duplicates())
	}
}

// BenchmarkHandleEvents: the receive path allocates nothing per reply,
// duplicate or not, in the bitmap and in the hash. The events are built
// before the clock starts: handleEvents alone is timed.
func BenchmarkHandleEvents(b *testing.B) {
	for _, mode := range []struct {
		name      string
		bitmapMax uint64
	}{{"bitmap", bitmapMaxPairs}, {"hash", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.19.255.255")})
			ports := []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 80}, {Proto: targets.ProtoTCP, Num: 443}}
			seen := &classSeen{open: newSeenSetLimit(set, ports, mode.bitmapMax), other: newSeenSetLimit(set, ports, mode.bitmapMax)}
			// Room for every pair up front: growth is amortised, not per reply.
			seen.open.hash, seen.other.hash = newIndexHash(1<<20), newIndexHash(1<<20)
			events := make([]bpf.ScanScanEvent, (b.N+511)/512*512)
			for i := range events {
				// Every pair answered twice: half the events are duplicates.
				n := uint64(i) / 2 % (set.Len() * 3)
				a := set.At(n / 3).As4()
				events[i] = bpf.ScanScanEvent{Family: 4, Proto: targets.ProtoTCP, Port: ports[n%3].Num, Kind: probe.ReplyOpen}
				copy(events[i].Addr[:], a[:])
			}
			var progress Progress
			var lines uint64
			emit := func(Result) { lines++ }
			rv := newResolver(8, &progress, emit)
			rv.keyByIndex(seen.open)
			mono := clock.NewMono()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < len(events); i += 512 {
				handleEvents(events[i:i+512], mono, seen, rv)
			}
			if lines == 0 {
				b.Fatal("nothing emitted")
			}
		})
	}
}

// BenchmarkSeenSetAdmit is the set's own cost per reply, a /15 × 64 ports
// (8.4M pairs: a 1 MiB bitmap) answered in a random order.
func BenchmarkSeenSetAdmit(b *testing.B) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.19.255.255")})
	ports := make([]targets.Port, 64)
	for i := range ports {
		ports[i] = targets.Port{Proto: targets.ProtoTCP, Num: uint16(i + 1)}
	}
	seen := newSeenSet(set, ports)
	perm := targets.NewPermutation(set.Len()*64, 1)
	addrs := make([]netip.Addr, 1<<16)
	nums := make([]uint16, len(addrs))
	for i := range addrs {
		x := perm.At(uint64(i))
		addrs[i], nums[i] = set.At(x/64), uint16(x%64+1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(addrs)
		seen.admit(addrs[j], targets.ProtoTCP, nums[j])
	}
}

// TestSeenSetPicksItsForm: a bitmap up to 2^32 pairs (a full IPv4 sweep of
// one port: 512 MiB, allocated lazily by the kernel), the hash beyond, so
// that no scan the targets allow asks for more than that up front.
func TestSeenSetPicksItsForm(t *testing.T) {
	all := targets.NewRangeSet([]targets.Range{r4("0.0.0.0", "255.255.255.255")})
	v6 := targets.NewRangeSet([]targets.Range{r4("2001:2::", "2001:2::ffff:ffff")})
	tcp := func(n int) []targets.Port {
		out := make([]targets.Port, n)
		for i := range out {
			out[i] = targets.Port{Proto: targets.ProtoTCP, Num: uint16(i + 1)}
		}
		return out
	}
	tests := []struct {
		name      string
		set       targets.RangeSet
		ports     []targets.Port
		wantWords int // 0: the hash
	}{
		{"a /16 × 72 ports: 590 KB", targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.255.255")}), tcp(72), 65536 * 72 / 64},
		{"IPv4 × 1 port: 512 MiB", all, tcp(1), 1 << 26},
		{"IPv4 × 2 ports: the hash", all, tcp(2), 0},
		{"2^32 IPv6 × every TCP and UDP port: the hash", v6, append(tcp(65535), targets.Port{Proto: targets.ProtoUDP, Num: 1}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeenSet(tt.set, tt.ports)
			if len(s.bits) != tt.wantWords || (tt.wantWords == 0) != (s.hash.slots != nil) {
				t.Fatalf("bitmap of %d words, hash of %d slots: want %d words", len(s.bits), len(s.hash.slots), tt.wantWords)
			}
			// The last pair of the space maps inside it and is kept.
			last := tt.set.At(tt.set.Len() - 1)
			p := tt.ports[len(tt.ports)-1]
			if idx, ok := s.index(last, p.Proto, p.Num); !ok || idx != s.pairs-1 {
				t.Errorf("index of the last pair = %d, %v; want %d", idx, ok, s.pairs-1)
			}
			if !s.admit(last, p.Proto, p.Num) || s.admit(last, p.Proto, p.Num) {
				t.Error("the last pair is not admitted exactly once")
			}
		})
	}
}
