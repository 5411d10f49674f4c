package scan

import (
	"net/netip"

	"github.com/xdpscan/xdpscan/targets"
)

// seenSet is the exact set of pairs a scan has printed: the output
// contract's "a pair is never printed twice", at any scale.
//
// The kernel's dedup table (bpf/include/dedup.h) stays the fast first
// filter, but it is lossy by design: a full bucket evicts a fingerprint, so
// past a few million answered pairs a retransmitted reply is reported
// again, and two CPUs racing on one bucket may both report the same pair.
// Every event then reaches this set, on the one goroutine that reads the
// ring, so neither an eviction nor a race between CPUs can print a pair
// twice.
//
// A pair is keyed by its probe index, its place in the scan's pair space:
// target index × len(ports) + port index, the number Config.probeAt
// permutes. Every pass of --retries and every --shards share maps a pair to
// the same index.
//
// Up to bitmapMaxPairs pairs the set is a bitmap, one bit a pair, allocated
// once (a /16 × 72 ports: 590 KB; 2^32 pairs, a full IPv4 sweep of one
// port: 512 MiB, as zmap's). Larger scans (the index can reach 2^50) keep
// the indices of the pairs printed in an open-addressed hash table instead:
// 11 to 21 bytes per pair printed (8-byte slots, at most 3/4 full, doubled
// when full), so memory grows with the output, not with the probes.
// Neither allocates per reply; the table's doubling is amortised.
type seenSet struct {
	targets targets.RangeSet
	// ports[proto] maps a port number, from ports[proto].lo, to 1 + its
	// place in Config.Ports (0: not probed): one load per reply. A table
	// spans only its protocol's probed ports, 256 KiB at most.
	ports  [3]portTable // TCP, UDP, echo
	nports uint64
	pairs  uint64 // targets × ports

	bits []uint64 // pairs <= bitmapMaxPairs
	hash indexHash

	// stray holds pairs outside the scan's space. The kernel reports only
	// replies whose cookie it checked, so none is expected; they are still
	// kept to one line each.
	stray map[strayPair]struct{}

	// Duplicates is how many events this set refused: the kernel table's
	// misses (evictions, races between CPUs).
	Duplicates uint64

	// better, if set, is asked about a reply for a pair already printed: a
	// later answer that validates better than the printed one may be let
	// through (issue 24 part 1, conflicting answers). Nil: first wins. It
	// runs with the resolver's lock held (handleEvents): it must not take
	// it.
	better func(idx uint64) bool
}

// bitmapMaxPairs is the largest scan whose set is a bitmap: 2^32 pairs,
// 512 MiB. Beyond, a bitmap would outgrow what most hosts can spare while
// the pairs that answer are almost always a small part of the probes.
const bitmapMaxPairs = 1 << 32

type portTable struct {
	lo  uint16
	idx []uint32
}

// protoSlot is a protocol's place in seenSet.ports.
func protoSlot(proto uint8) (int, bool) {
	switch proto {
	case targets.ProtoTCP:
		return 0, true
	case targets.ProtoUDP:
		return 1, true
	case targets.ProtoICMP, targets.ProtoICMPv6:
		return 2, true
	}
	return 0, false
}

type strayPair struct {
	addr  netip.Addr
	proto uint8
	port  uint16
}

func newSeenSet(t targets.RangeSet, ports []targets.Port) *seenSet {
	return newSeenSetLimit(t, ports, bitmapMaxPairs)
}

// newSeenSetLimit is newSeenSet with a bitmap for at most bitmapMax pairs.
func newSeenSetLimit(t targets.RangeSet, ports []targets.Port, bitmapMax uint64) *seenSet {
	s := &seenSet{targets: t, nports: uint64(len(ports))}
	var lo, hi [3]uint16
	var any [3]bool
	num := func(k int, p targets.Port) uint16 {
		if k == 2 {
			return 0 // see index
		}
		return p.Num
	}
	for _, p := range ports {
		k, ok := protoSlot(p.Proto)
		if !ok {
			continue
		}
		if n := num(k, p); !any[k] || n < lo[k] {
			lo[k] = n
		}
		if n := num(k, p); !any[k] || n > hi[k] {
			hi[k] = n
		}
		any[k] = true
	}
	for k := range s.ports {
		if any[k] {
			s.ports[k] = portTable{lo: lo[k], idx: make([]uint32, int(hi[k]-lo[k])+1)}
		}
	}
	for i, p := range ports {
		if k, ok := protoSlot(p.Proto); ok {
			s.ports[k].idx[num(k, p)-lo[k]] = uint32(i) + 1
		}
	}
	s.pairs = t.Len() * s.nports
	if t.Len() != 0 && s.pairs/t.Len() != s.nports {
		s.pairs = ^uint64(0) // cannot happen under Resolve's limits; stay on the hash
	}
	if s.pairs <= bitmapMax {
		s.bits = make([]uint64, (s.pairs+63)/64)
	} else {
		s.hash = newIndexHash(1 << 16)
	}
	return s
}

// index is the pair's probe index, if it is one of the scan's pairs.
func (s *seenSet) index(addr netip.Addr, proto uint8, port uint16) (uint64, bool) {
	k, ok := protoSlot(proto)
	if !ok {
		return 0, false
	}
	if k == 2 {
		port = 0 // echo has no port, whichever number the reply carries
	}
	tab := &s.ports[k]
	if port < tab.lo || int(port-tab.lo) >= len(tab.idx) || tab.idx[port-tab.lo] == 0 {
		return 0, false
	}
	t, ok := s.targets.Index(addr)
	if !ok {
		return 0, false
	}
	return t*s.nports + uint64(tab.idx[port-tab.lo]-1), true
}

// admit reports whether a reply for (addr, proto, port) is to be printed:
// the pair's first, or (with better) a better one. It counts the others.
func (s *seenSet) admit(addr netip.Addr, proto uint8, port uint16) bool {
	ok, _, _ := s.admitIndex(addr, proto, port)
	return ok
}

// admitIndex is admit, and the pair's probe index (indexed false: a
// stray pair, outside the scan's space), which the resolver keys the
// printed pairs by: found once a reply.
func (s *seenSet) admitIndex(addr netip.Addr, proto uint8, port uint16) (ok bool, idx uint64, indexed bool) {
	idx, indexed = s.index(addr, proto, port)
	if !indexed {
		return s.admitStray(addr, proto, port), 0, false
	}
	if s.testAndSet(idx) {
		return true, idx, true
	}
	if s.better != nil && s.better(idx) {
		return true, idx, true
	}
	s.Duplicates++
	return false, idx, true
}

// testAndSet adds idx and reports whether it was new.
func (s *seenSet) testAndSet(idx uint64) bool {
	if s.bits != nil {
		w, b := idx/64, uint64(1)<<(idx%64)
		if s.bits[w]&b != 0 {
			return false
		}
		s.bits[w] |= b
		return true
	}
	return s.hash.add(idx)
}

func (s *seenSet) admitStray(addr netip.Addr, proto uint8, port uint16) bool {
	if s.stray == nil {
		s.stray = map[strayPair]struct{}{}
	}
	k := strayPair{addr, proto, port}
	if _, dup := s.stray[k]; dup {
		s.Duplicates++
		return false
	}
	s.stray[k] = struct{}{}
	return true
}

// indexHash is a set of probe indices: open addressing with linear
// probing over a power-of-two table of idx+1 (0 marks an empty slot).
type indexHash struct {
	slots []uint64
	n     int
}

func newIndexHash(size int) indexHash { return indexHash{slots: make([]uint64, size)} }

// add inserts idx and reports whether it was new.
func (h *indexHash) add(idx uint64) bool {
	if (h.n+1)*4 > len(h.slots)*3 {
		h.grow()
	}
	v := idx + 1
	mask := uint64(len(h.slots) - 1)
	for i := mix64(v) & mask; ; i = (i + 1) & mask {
		switch h.slots[i] {
		case v:
			return false
		case 0:
			h.slots[i] = v
			h.n++
			return true
		}
	}
}

func (h *indexHash) grow() {
	old := h.slots
	h.slots = make([]uint64, max(len(old)*2, 16))
	mask := uint64(len(h.slots) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := mix64(v) & mask
		for h.slots[i] != 0 {
			i = (i + 1) & mask
		}
		h.slots[i] = v
	}
}

// mix64 is MurmurHash3's finaliser (the kernel table's hash too): indices
// of one host are consecutive, and linear probing needs them spread.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// setDuplicates records both filters' counts.
func (st *Stats) setDuplicates(kernel, userSpace uint64) {
	st.Duplicates, st.DuplicatesUserSpace = kernel+userSpace, userSpace
}

// classSeen is the exact set per state class, as the kernel's table keys
// its entries since answers carry cookies of different strength: an open
// answer and a closed-or-filtered one for the same pair each pass once,
// and the resolver (conflict.go) decides which is printed. Two bitmaps:
// 1.2 MB for a /16 × 72 ports.
type classSeen struct {
	open, other *seenSet
}

func newClassSeen(t targets.RangeSet, ports []targets.Port) *classSeen {
	return &classSeen{open: newSeenSet(t, ports), other: newSeenSet(t, ports)}
}

// admit is seenSet.admitIndex for the answer's class (both sets share
// one index space).
func (c *classSeen) admit(addr netip.Addr, proto uint8, port uint16, open bool) (ok bool, idx uint64, indexed bool) {
	if open {
		return c.open.admitIndex(addr, proto, port)
	}
	return c.other.admitIndex(addr, proto, port)
}

// duplicates is what both sets refused.
func (c *classSeen) duplicates() uint64 { return c.open.Duplicates + c.other.Duplicates }
