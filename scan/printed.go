package scan

import "github.com/xdpscan/xdpscan/targets"

// pairStates is the state each printed pair was printed with (the
// resolver's record, conflict.go), keyed by the pair's probe index
// (seenSet.index) rather than by address, port and protocol.
//
// It replaced a Go map keyed by (netip.Addr, port, proto string): at a
// max-rate scan of a /16 × 4 ports on the kernel target (245,760 answers)
// that map's growth, hashing and GC scanning were 0.3-0.46 of the scan's
// 0.83 CPU seconds (pprof: runtime.mapassign -> table.split ->
// table.reset, page faults on each new table; mapaccess2; scanblock), as
// much as all the sending. Here a reply is one load and one store.
//
// Up to denseMaxPairs pairs it is a dense array of 4-bit state codes
// (a /16 × 4 ports: 128 KiB; 198.18.0.0/15 × 100 ports: 6.5 MB, of which
// only the pages with answers become resident). Larger scans keep the
// printed pairs in an open-addressed table of (index+1)<<3 | code, 11 to
// 21 bytes per printed pair, as seenSet's hash does.
type pairStates struct {
	nibbles []byte
	hash    stateHash
}

// denseMaxPairs is the largest scan whose states are a dense array: 2^26
// pairs, 32 MiB. Beyond, answers are usually a small share of the pairs
// and scattered, so a dense array would become resident page by page
// while holding mostly zeros.
const denseMaxPairs = 1 << 26

func newPairStates(pairs uint64) *pairStates {
	if pairs <= denseMaxPairs {
		return &pairStates{nibbles: make([]byte, (pairs+1)/2)}
	}
	return &pairStates{hash: stateHash{slots: make([]uint64, 1<<16)}}
}

// stateCode is a State's 3-bit code; 0 means not printed.
func stateCode(s State) uint8 {
	switch s {
	case StateOpen:
		return 1
	case StateClosed:
		return 2
	case StateFiltered:
		return 3
	case StateUp:
		return 4
	}
	return 5 // a state this table does not name: still "printed"
}

// get returns the code pair idx was printed with (0: not printed).
func (p *pairStates) get(idx uint64) uint8 {
	if p.nibbles != nil {
		return p.nibbles[idx/2] >> (idx % 2 * 4) & 0xf
	}
	return p.hash.get(idx)
}

// set records that pair idx was printed with code c (1-7).
func (p *pairStates) set(idx uint64, c uint8) {
	if p.nibbles != nil {
		sh := idx % 2 * 4
		p.nibbles[idx/2] = p.nibbles[idx/2]&^(0xf<<sh) | c<<sh
		return
	}
	p.hash.set(idx, c)
}

// stateHash maps probe indices to codes: open addressing with linear
// probing over a power-of-two table of (idx+1)<<3 | code (0: an empty
// slot). Indices stay below 2^50 (Resolve's limits), so the shift loses
// nothing.
type stateHash struct {
	slots []uint64
	n     int
}

func (h *stateHash) get(idx uint64) uint8 {
	k := idx + 1
	mask := uint64(len(h.slots) - 1)
	for i := mix64(k) & mask; ; i = (i + 1) & mask {
		switch v := h.slots[i]; {
		case v == 0:
			return 0
		case v>>3 == k:
			return uint8(v & 7)
		}
	}
}

func (h *stateHash) set(idx uint64, c uint8) {
	if (h.n+1)*4 > len(h.slots)*3 {
		h.grow()
	}
	k := idx + 1
	mask := uint64(len(h.slots) - 1)
	for i := mix64(k) & mask; ; i = (i + 1) & mask {
		switch v := h.slots[i]; {
		case v == 0:
			h.slots[i] = k<<3 | uint64(c)
			h.n++
			return
		case v>>3 == k:
			h.slots[i] = k<<3 | uint64(c)
			return
		}
	}
}

func (h *stateHash) grow() {
	old := h.slots
	h.slots = make([]uint64, max(len(old)*2, 16))
	mask := uint64(len(h.slots) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := mix64(v>>3) & mask
		for h.slots[i] != 0 {
			i = (i + 1) & mask
		}
		h.slots[i] = v
	}
}

// protoNumber is the protocol number of a Result's Proto ("icmp" is the
// echo probe of either family: seenSet.index files both together).
func protoNumber(proto string) (uint8, bool) {
	switch proto {
	case "tcp":
		return targets.ProtoTCP, true
	case "udp":
		return targets.ProtoUDP, true
	case "icmp":
		return targets.ProtoICMP, true
	}
	return 0, false
}

// pairRef is a pair as the resolver keys it: by probe index when the
// pair is one of the scan's (indexed), else by key.
type pairRef struct {
	key     pairKey
	idx     uint64
	indexed bool
}

// ref finds k's probe index, once per answer.
func (rv *resolver) ref(k pairKey) pairRef {
	r := pairRef{key: k}
	if rv.pairs == nil {
		return r
	}
	if p, ok := protoNumber(k.proto); ok {
		r.idx, r.indexed = rv.pairs.index(k.addr, p, k.port)
	}
	return r
}

// printedState is the state pair k was printed with, if it was.
func (rv *resolver) printedState(k pairRef) (State, bool) {
	if k.indexed {
		switch rv.states.get(k.idx) {
		case 0:
			return "", false
		case 1:
			return StateOpen, true
		case 2:
			return StateClosed, true
		case 3:
			return StateFiltered, true
		case 4:
			return StateUp, true
		}
		// Code 5 (a State stateCode does not name) is kept exactly in
		// the map below.
	}
	s, ok := rv.printed[k.key]
	return s, ok
}

// setPrinted records that pair k was printed with state s.
func (rv *resolver) setPrinted(k pairRef, s State) {
	if k.indexed {
		c := stateCode(s)
		rv.states.set(k.idx, c)
		if c != 5 {
			return
		}
	}
	rv.printed[k.key] = s
}
