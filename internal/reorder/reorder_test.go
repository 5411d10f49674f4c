package reorder

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

type out struct {
	src int
	ts  int64
	id  uint64
}

func collect(t *testing.T, n int, window int64) (*Merger, *[]out) {
	var got []out
	m := New(n, window, func(src int, ts int64, data []byte) {
		if len(data) != 8 {
			t.Fatalf("record of %d bytes, want 8", len(data))
		}
		got = append(got, out{src, ts, binary.LittleEndian.Uint64(data)})
	})
	return m, &got
}

func rec(id uint64) []byte { return binary.LittleEndian.AppendUint64(nil, id) }

// Per-CPU sources, each in order by itself, read in turns of random length
// as the ring reader does: the output is every record once, in timestamp
// order, with none late.
func TestMergesPerCPURecordsInOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources int
		records int
	}{
		{"one source", 1, 1000},
		{"two CPUs", 2, 20000},
		{"eight CPUs", 8, 50000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.sources)))
			// Each source's stream: increasing stamps, interleaved in
			// time with the others'.
			streams := make([][]out, tc.sources)
			for i := 0; i < tc.records; i++ {
				s := rng.IntN(tc.sources)
				streams[s] = append(streams[s], out{s, int64(i) * 100, uint64(i)})
			}
			m, got := collect(t, tc.sources, 1_000_000)
			next := make([]int, tc.sources)
			for done := 0; done < tc.sources; {
				done = 0
				for s := range streams {
					k := rng.IntN(300)
					for ; k > 0 && next[s] < len(streams[s]); k-- {
						r := streams[s][next[s]]
						m.Push(s, r.ts, rec(r.id))
						next[s]++
					}
					if next[s] == len(streams[s]) {
						done++
					}
				}
				m.Release()
			}
			m.Flush()
			if len(*got) != tc.records {
				t.Fatalf("released %d records, want %d", len(*got), tc.records)
			}
			if !slices.IsSortedFunc(*got, func(a, b out) int { return int(a.ts - b.ts) }) {
				t.Fatal("released out of timestamp order")
			}
			for i, r := range *got {
				if r.id != uint64(i) {
					t.Fatalf("record %d is id %d: a record lost or repeated", i, r.id)
				}
			}
			if st := m.Stats(); st.Late != 0 || st.Records != uint64(tc.records) {
				t.Fatalf("stats %+v: want %d records, 0 late", st, tc.records)
			}
		})
	}
}

// A source found empty lets the others' records go once the window has
// passed, and not before.
func TestEmptySourceHoldsForTheWindowOnly(t *testing.T) {
	m, got := collect(t, 2, 1000)
	m.Push(0, 5000, rec(1))
	m.Release()
	if len(*got) != 0 {
		t.Fatal("released before source 1 said anything: it may still hold older records")
	}
	m.Empty(1, 5500) // anything older than 4500 from source 1 has arrived
	m.Release()
	if len(*got) != 0 {
		t.Fatal("released a record younger than the empty source's bound")
	}
	m.Empty(1, 6000)
	m.Release()
	if len(*got) != 1 {
		t.Fatalf("released %d records once the window passed, want 1", len(*got))
	}
}

// A record older than one already released (it came later than the
// window allows) is counted, and handed on: never lost.
func TestLateRecordCountedNeverLost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lateTs  int64
		wantLag int64
	}{
		{"just older", 9999, 1},
		{"far older", 10, 9990},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, got := collect(t, 2, 1000)
			m.Push(0, 10000, rec(1))
			m.Empty(1, 20000)
			m.Release()
			if len(*got) != 1 {
				t.Fatalf("released %d, want the first record", len(*got))
			}
			m.Push(1, tc.lateTs, rec(2)) // older than the window allowed
			m.Push(0, 10001, rec(3))
			m.Flush()
			ids := []uint64{}
			for _, r := range *got {
				ids = append(ids, r.id)
			}
			if !slices.Equal(ids, []uint64{1, 2, 3}) {
				t.Fatalf("released ids %v, want [1 2 3]: the late record at once, none lost", ids)
			}
			st := m.Stats()
			if st.Late != 1 || st.LatePerSource[1] != 1 || st.MaxLateNs != tc.wantLag || st.Records != 3 {
				t.Fatalf("stats %+v: want 1 late from source 1, %d ns late, 3 records", st, tc.wantLag)
			}
		})
	}
}

// A source found idle holds the others' records for QuietSlack, not the
// window.
func TestQuietSourceHoldsForTheSlackOnly(t *testing.T) {
	m, got := collect(t, 2, DefaultWindow)
	m.Push(0, 5_000_000, rec(1))
	m.Quiet(1, 5_000_000+QuietSlack-1) // a record stamped 4.99.. ms may still come
	m.Release()
	if len(*got) != 0 {
		t.Fatal("released a record younger than the quiet source's bound")
	}
	m.Quiet(1, 5_000_000+QuietSlack)
	m.Release()
	if len(*got) != 1 {
		t.Fatalf("released %d records once the slack passed, want 1", len(*got))
	}
}

// Records older than their own source's newest (a ring several CPUs
// write) still come out in order, through the side heap, none late.
func TestUnorderedWithinASource(t *testing.T) {
	m, got := collect(t, 2, 1000)
	for i, ts := range []int64{10, 30, 20, 25, 5, 40} {
		m.Push(0, ts, rec(uint64(i)))
	}
	m.Push(1, 22, rec(99))
	m.Flush()
	var ts []int64
	for _, r := range *got {
		ts = append(ts, r.ts)
	}
	if !slices.Equal(ts, []int64{5, 10, 20, 22, 25, 30, 40}) {
		t.Fatalf("released %v, want every record in timestamp order", ts)
	}
	if st := m.Stats(); st.Late != 0 || st.Unordered != 3 || st.Records != 7 {
		t.Fatalf("stats %+v: want 0 late, 3 unordered, 7 records", st)
	}
}

// Records pushed in place pin their ring up to the oldest one not
// released; Spill copies them, so the ring can be given back and reused
// while they wait.
func TestPinnedAndSpill(t *testing.T) {
	ring := make([]byte, 64)
	put := func(pos int, id uint64) []byte {
		copy(ring[pos:], rec(id))
		return ring[pos : pos+8]
	}
	m, got := collect(t, 2, DefaultWindow)
	m.SetMemory(0, ring)
	if _, ok := m.Pinned(0); ok {
		t.Fatal("an empty source pins its ring")
	}
	m.PushAt(0, 100, 0, put(0, 1))
	m.PushAt(0, 200, 8, put(8, 2))
	if pos, ok := m.Pinned(0); !ok || pos != 0 {
		t.Fatalf("Pinned = %d, %v: want 0, true (nothing released)", pos, ok)
	}
	m.Quiet(1, 150+QuietSlack) // lets the record at 100 go
	m.Release()
	if pos, ok := m.Pinned(0); len(*got) != 1 || !ok || pos != 8 {
		t.Fatalf("after releasing one: %d released, Pinned = %d, %v; want 1, 8, true", len(*got), pos, ok)
	}
	m.Spill(0)
	if _, ok := m.Pinned(0); ok {
		t.Fatal("still pinned after Spill")
	}
	for i := range ring {
		ring[i] = 0xee // the kernel reuses what was given back
	}
	m.PushAt(0, 300, 16, put(16, 3))
	if pos, ok := m.Pinned(0); !ok || pos != 16 {
		t.Fatalf("Pinned = %d, %v after a new record: want 16, true", pos, ok)
	}
	m.Flush()
	ids := []uint64{}
	for _, r := range *got {
		ids = append(ids, r.id)
	}
	if !slices.Equal(ids, []uint64{1, 2, 3}) {
		t.Fatalf("released ids %v, want [1 2 3]: a spilled record read from reused memory", ids)
	}
	if st := m.Stats(); st.Spilled != 1 {
		t.Fatalf("Spilled = %d, want 1", st.Spilled)
	}
}

// The ring reader's contract, at random: sources pushed in place into
// rings that the "kernel" overwrites as soon as Pinned lets it, copies
// and spills mixed in, records now and then out of their source's order,
// idle sources Quiet. Every record comes out once with its own bytes, in
// order but for records counted late.
func TestInPlaceUnderRingReuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sources   int
		unordered int // one record in this many is older than its predecessor
		spill     int // one pass in this many spills a source
	}{
		{"two CPUs, ordered", 2, 0, 0},
		{"three rings, spills", 3, 0, 3},
		{"eight rings, unordered and spills", 8, 20, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.sources)))
			type ringSim struct {
				buf      []byte
				pos      uint64 // next record's position
				given    uint64 // given back up to here
				lastTs   int64
				produced []out
			}
			rings := make([]ringSim, tc.sources)
			for i := range rings {
				rings[i].buf = make([]byte, 1<<16)
			}
			var got []out
			m := New(tc.sources, 1_000_000, func(src int, ts int64, data []byte) {
				id := binary.LittleEndian.Uint64(data)
				if int64(binary.LittleEndian.Uint64(data[8:])) != ts {
					t.Fatalf("record %d from source %d: bytes say ts %d, merger says %d (memory reused under it)", id, src, int64(binary.LittleEndian.Uint64(data[8:])), ts)
				}
				got = append(got, out{src, ts, id})
			})
			for s := range rings {
				m.SetMemory(s, rings[s].buf)
			}
			now := int64(1_000_000)
			id := uint64(0)
			for pass := 0; pass < 400; pass++ {
				for s := range rings {
					r := &rings[s]
					k := rng.IntN(40)
					if rng.IntN(3) == 0 {
						k = 0
					}
					for ; k > 0; k-- {
						now += int64(rng.IntN(50))
						ts := max(now, r.lastTs)
						if tc.unordered > 0 && rng.IntN(tc.unordered) == 0 {
							ts = r.lastTs - int64(rng.IntN(30))
						}
						r.lastTs = max(r.lastTs, ts)
						off := r.pos % uint64(len(r.buf))
						if off+16 > uint64(len(r.buf)) {
							r.pos += uint64(len(r.buf)) - off
							off = 0
						}
						if r.pos+16-r.given > uint64(len(r.buf)) {
							t.Fatalf("source %d's ring full: %d bytes pinned", s, r.pos-r.given)
						}
						data := r.buf[off : off+16]
						binary.LittleEndian.PutUint64(data, id)
						binary.LittleEndian.PutUint64(data[8:], uint64(ts))
						r.produced = append(r.produced, out{s, ts, id})
						if rng.IntN(10) == 0 {
							m.Push(s, ts, data)
						} else {
							m.PushAt(s, ts, r.pos, data)
						}
						r.pos += 16
						id++
					}
					if k == 0 && rng.IntN(2) == 0 {
						m.Quiet(s, now)
					}
				}
				m.Release()
				for s := range rings {
					r := &rings[s]
					if tc.spill > 0 && rng.IntN(tc.spill) == 0 {
						m.Spill(s)
					}
					to := r.pos
					if p, ok := m.Pinned(s); ok {
						to = p
					}
					// Given back: the kernel writes over it at once.
					for ; r.given < to; r.given++ {
						r.buf[r.given%uint64(len(r.buf))] = 0xee
					}
				}
			}
			m.Flush()
			if len(got) != int(id) {
				t.Fatalf("released %d records, want %d", len(got), id)
			}
			seen := make([]bool, id)
			inversions := uint64(0)
			for i, r := range got {
				if seen[r.id] {
					t.Fatalf("record %d released twice", r.id)
				}
				seen[r.id] = true
				if i > 0 && r.ts < got[i-1].ts {
					inversions++
				}
			}
			st := m.Stats()
			if inversions > st.Late {
				t.Fatalf("%d records out of order, %d counted late", inversions, st.Late)
			}
			if tc.unordered == 0 && st.Late != 0 {
				t.Fatalf("%d late with every source in order and its bounds kept", st.Late)
			}
			t.Logf("%d records, %d late, %d unordered, %d spilled, most held %d", id, st.Late, st.Unordered, st.Spilled, st.MaxHeld)
		})
	}
}

// Once the buffers have grown, merging allocates nothing per record.
func TestNoAllocationPerRecord(t *testing.T) {
	m := New(2, 1000, func(int, int64, []byte) {})
	data := make([]byte, 128)
	m.SetMemory(0, data)
	m.SetMemory(1, data)
	ts := int64(0)
	round := func() {
		for i := 0; i < 64; i++ {
			ts++
			if i&2 == 0 {
				m.Push(i&1, ts, data)
			} else {
				m.PushAt(i&1, ts, uint64(ts), data)
			}
		}
		m.Release()
	}
	for i := 0; i < 10; i++ {
		round()
	}
	if a := testing.AllocsPerRun(100, round); a != 0 {
		t.Fatalf("%.1f allocations per round of 64 records, want 0", a)
	}
}

// BenchmarkMerge is the merge alone, as ringbuf.Multi.RunMerged drives
// it: passes of up to 1024 records per source pushed in place (PushAt),
// the idle sources Quiet, then Release. Records are 160 bytes (a -s 128
// capture record). "copy" pushes with Push instead (every record copied).
func BenchmarkMerge(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sources int // sources read; the first busy ones get records
		busy    int
		run     int // consecutive timestamps from one source
		copy    bool
	}{
		{"1 of 3 busy", 3, 1, 1, false},
		{"2 of 3 busy, runs of 64", 3, 2, 64, false},
		{"2 of 3 busy, interleaved", 3, 2, 1, false},
		{"2 of 3 busy, interleaved, copy", 3, 2, 1, true},
		{"8 of 9 busy, interleaved", 9, 8, 1, false},
		{"16 of 17 busy, runs of 16", 17, 16, 16, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const pass = 1024
			ring := make([]byte, 160*pass*tc.busy)
			n := uint64(0)
			m := New(tc.sources, 0, func(int, int64, []byte) { n++ })
			for src := 0; src < tc.busy; src++ {
				m.SetMemory(src, ring)
			}
			ts := int64(1)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += pass * tc.busy {
				// One pass: each busy source's next records, in ring order.
				for src := 0; src < tc.busy; src++ {
					for i := 0; i < pass; i++ {
						// Record i of src: the timestamp it had in the
						// interleaving, runs of tc.run per source.
						j := (i/tc.run)*tc.run*tc.busy + src*tc.run + i%tc.run
						off := (src*pass + i) * 160
						if tc.copy {
							m.Push(src, ts+int64(j), ring[off:off+160])
						} else {
							m.PushAt(src, ts+int64(j), uint64(off), ring[off:off+160])
						}
					}
				}
				ts += int64(pass * tc.busy)
				for src := tc.busy; src < tc.sources; src++ {
					m.Quiet(src, ts+QuietSlack)
				}
				m.Release()
			}
			m.Flush()
			b.StopTimer()
			if n == 0 {
				b.Fatal("nothing released")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
		})
	}
}
