// Package reorder merges records from several sources (per-CPU ring
// buffers, several interfaces) into one stream in timestamp order, within a
// bounded reorder window.
//
// Each source is nearly ordered by itself (a per-CPU ring is written by one
// CPU at a time), and the sources are read in turn, so a record can reach
// the merger after a newer one from another source. The merger holds
// records until no source can still deliver an older one: a source that
// was read up to time t will deliver nothing older than t (its own order);
// a source read to its end with no record in progress (Quiet) at
// (monotonic) time now will deliver nothing older than now (a record is
// stamped after its reservation, QuietSlack allowing for clocks); and a
// source that could not be read to its end (Empty: a record still being
// written) will deliver nothing older than now-Window. The watermark is the
// least of these bounds; records at or below it are released in order.
//
// A record that arrives below what was already released is late: it is
// counted (Stats.Late, and how late) and released at once, out of order.
// It is never dropped.
//
// Each source's records wait in a queue of their own, in their order, and
// are released by a k-way merge that hands on runs: every record of the
// source with the oldest head up to the next source's head (or the
// watermark), with one comparison per record and no heap. A record older
// than its source's newest queued one (a source written by several CPUs)
// waits in a side heap instead, merged as one more source.
//
// Records pushed with PushAt are not copied: they stay where they lie (a
// ring buffer's pages) until released, and Pinned says how far the ring
// may be given back. Spill copies them when they pin too much of it.
// Records pushed with Push are copied into reused buffers. Either way, no
// allocation per record once the buffers have grown to the held working
// set.
package reorder

import (
	"math"
	"unsafe"
)

// DefaultWindow is how long a source's record may take to show up after
// being stamped when the reader finds a record of it still being written,
// in nanoseconds: 50 ms. The ring reader polls every 5 ms
// (ringbuf.Options.PollInterval) and hands over up to 1024 records per
// ring per turn (about 0.5 ms at 2M records/s); a capture record is
// stamped after its reservation and submitted microseconds later, unless
// the CPU is taken for an interrupt or, in a VM, by the hypervisor (steal
// of tens of ms was seen on this shared 2-vCPU machine). A source found
// idle (Quiet) holds the others for QuietSlack only.
const DefaultWindow = 50_000_000

// QuietSlack is how far behind the reader's clock a source found idle may
// still stamp a record, in nanoseconds: 100 us. A capture record is
// stamped (bpf_ktime_get_ns) after it is reserved, so a record reserved
// after the reader saw the ring idle is stamped after the reader's clock
// was read; the slack covers the NMI-safe clock the program reads and the
// reader's vDSO clock applying an NTP rate change at different moments
// (at most 500 ppm of a 4 ms tick: 2 us) and TSC skew between CPUs
// (the kernel keeps TSC as the clock only while it is synchronised). It
// used to be the whole window: with per-CPU rings the shared ring, idle,
// then held every record for 50 ms (27-31k records held on a 1M-frame
// flood); a record later than the slack is counted late, never lost.
const QuietSlack = 100_000

// Stats are the merger's counters.
type Stats struct {
	Records uint64 // records released, in order or late
	Late    uint64 // records older than one already released: out of order, not lost
	// MaxLateNs is how far behind the released stream the latest late
	// record was.
	MaxLateNs int64
	MaxHeld   int // most records held at once
	// LatePerSource counts late records by source.
	LatePerSource []uint64
	// Spilled: records pushed in place and copied out of their ring
	// because they held too much of it (Spill); Unordered: records older
	// than their source's newest queued one (the side heap).
	Spilled   uint64
	Unordered uint64
}

// Emit receives each record in order; data is valid only during the call.
type Emit func(src int, ts int64, data []byte)

// owned is an entry's position when the merger holds a copy of the record.
const owned = math.MaxUint64

// entry is a queued record: its bytes are mem[off:off+n] of its source
// in place, arena[off:off+n] as a copy. No pointer: queueing a record
// stores 24 bytes and no write barrier, where a slice was 40 bytes and a
// barrier check.
type entry struct {
	ts     int64
	pos    uint64 // where the record lies in its ring; owned: a copy
	off, n uint32
}

// source is one source's queue: q[head:] in timestamp order, the first
// nOwned of them copies (Push, Spill) whose bytes are in arena, the rest in
// place (PushAt).
type source struct {
	q      []entry
	head   int
	nOwned int
	arena  []byte
	mem    []byte // where records pushed in place lie (SetMemory)
	bound  int64  // nothing older than this will come from the source
}

func (s *source) bytes(e *entry) []byte {
	if e.pos == owned {
		return s.arena[e.off : e.off+e.n : e.off+e.n]
	}
	return s.mem[e.off : e.off+e.n : e.off+e.n]
}

type held struct {
	ts  int64
	seq uint64
	src int
	buf []byte
}

// Merger is not safe for concurrent use: one reader goroutine feeds it.
type Merger struct {
	window  int64
	emit    Emit
	src     []source
	side    heldHeap // records out of their source's order
	free    [][]byte
	seq     uint64
	held    int
	emitted int64 // timestamp of the last record released in order
	st      Stats
}

// New makes a merger of n sources with the given window in nanoseconds
// (0: DefaultWindow).
func New(n int, windowNs int64, emit Emit) *Merger {
	if windowNs <= 0 {
		windowNs = DefaultWindow
	}
	m := &Merger{window: windowNs, emit: emit, src: make([]source, n), emitted: math.MinInt64}
	for i := range m.src {
		m.src[i].bound = math.MinInt64
	}
	m.st.LatePerSource = make([]uint64, n)
	return m
}

// Grow makes room for n records queued per source before any queue
// grows: the reader's pass, so that a merger made for a run does not
// grow while it starts.
func (m *Merger) Grow(n int) {
	for i := range m.src {
		if s := &m.src[i]; cap(s.q) < n {
			s.q = append(make([]entry, 0, n), s.q[s.head:]...)
			s.head = 0
		}
	}
}

// Push adds a record from src stamped ts (monotonic nanoseconds); data is
// copied.
func (m *Merger) Push(src int, ts int64, data []byte) {
	if m.late(src, ts, data) {
		return
	}
	if !m.queue(src, ts) {
		m.pushSide(src, ts, data)
		return
	}
	s := &m.src[src]
	if s.head+s.nOwned < len(s.q) {
		// Copies stay a prefix of the queue: copy the in-place ones first.
		m.Spill(src)
	}
	s.reserve(len(data))
	off := len(s.arena)
	s.arena = append(s.arena, data...)
	s.q = append(s.q, entry{ts: ts, pos: owned, off: uint32(off), n: uint32(len(data))})
	s.nOwned++
	m.grew()
}

// SetMemory says where src's records pushed in place lie: data given to
// PushAt must be within mem (a ring's pages).
func (m *Merger) SetMemory(src int, mem []byte) { m.src[src].mem = mem }

// PushAt adds a record from src stamped ts without copying it: data, in
// the memory SetMemory gave, must stay valid and unchanged until the
// record is released, that is until Pinned(src) is past pos, the record's
// position in its ring (positions grow with each record). Data elsewhere
// is copied, as Push.
func (m *Merger) PushAt(src int, ts int64, pos uint64, data []byte) {
	s := &m.src[src]
	off := uintptr(unsafe.Pointer(unsafe.SliceData(data))) - uintptr(unsafe.Pointer(unsafe.SliceData(s.mem)))
	if len(data) > len(s.mem) || off > uintptr(len(s.mem)-len(data)) || len(s.mem) > math.MaxUint32 {
		m.Push(src, ts, data)
		return
	}
	if m.late(src, ts, data) {
		return
	}
	if !m.queue(src, ts) {
		m.pushSide(src, ts, data)
		return
	}
	s.q = append(s.q, entry{ts: ts, pos: pos, off: uint32(off), n: uint32(len(data))})
	m.grew()
}

// late hands on a record older than one already released, at once.
func (m *Merger) late(src int, ts int64, data []byte) bool {
	if ts >= m.emitted {
		return false
	}
	m.st.Late++
	m.st.LatePerSource[src]++
	m.st.MaxLateNs = max(m.st.MaxLateNs, m.emitted-ts)
	m.st.Records++
	m.emit(src, ts, data)
	return true
}

// queue raises src's bound to ts and makes room for one more entry at the
// end of its queue; false: the record is older than the queue's newest,
// and went to the side heap (copied) instead.
func (m *Merger) queue(src int, ts int64) bool {
	s := &m.src[src]
	if ts > s.bound {
		s.bound = ts
	}
	n := len(s.q)
	if n > s.head && ts < s.q[n-1].ts {
		return false
	}
	if n == cap(s.q) && s.head > 0 {
		// Reuse the released front rather than grow.
		k := copy(s.q, s.q[s.head:])
		s.q, s.head = s.q[:k], 0
	}
	return true
}

func (m *Merger) grew() {
	m.held++
	m.st.MaxHeld = max(m.st.MaxHeld, m.held)
}

// pushSide is queue's false case: the record waits in the side heap.
func (m *Merger) pushSide(src int, ts int64, data []byte) {
	var buf []byte
	if n := len(m.free); n > 0 {
		buf, m.free = m.free[n-1][:0], m.free[:n-1]
	}
	m.seq++
	m.side.push(held{ts: ts, seq: m.seq, src: src, buf: append(buf, data...)})
	m.st.Unordered++
	m.grew()
}

// Pinned is the ring position of src's oldest record pushed in place and
// not yet released: the ring may be given back up to it (ok false: up to
// everything read).
func (m *Merger) Pinned(src int) (pos uint64, ok bool) {
	s := &m.src[src]
	if i := s.head + s.nOwned; i < len(s.q) {
		return s.q[i].pos, true
	}
	return 0, false
}

// Spill copies src's records pushed in place, so that their ring can be
// given back.
func (m *Merger) Spill(src int) {
	s := &m.src[src]
	first := s.head + s.nOwned
	if first == len(s.q) {
		return
	}
	need := 0
	for _, e := range s.q[first:] {
		need += int(e.n)
	}
	s.reserve(need)
	for i := first; i < len(s.q); i++ {
		e := &s.q[i]
		off := len(s.arena)
		s.arena = append(s.arena, s.bytes(e)...)
		e.off, e.pos = uint32(off), owned
	}
	m.st.Spilled += uint64(len(s.q) - first)
	s.nOwned = len(s.q) - s.head
}

// reserve makes room for need more bytes at the end of s's arena. The
// held copies lie in it in queue order, released ones before them: it is
// compacted when they are few, grown when not, every held copy moved
// along, so appends never grow it unnoticed and it never outgrows twice
// what is held.
func (s *source) reserve(need int) {
	if len(s.arena)+need <= cap(s.arena) {
		return
	}
	live := s.q[s.head : s.head+s.nOwned]
	size := need
	for _, e := range live {
		size += int(e.n)
	}
	dst := s.arena[:0]
	if 2*size > cap(s.arena) {
		dst = make([]byte, 0, 2*size)
	}
	// In place, each copy moves towards the front, past none still to move.
	for i := range live {
		off := len(dst)
		dst = append(dst, s.bytes(&live[i])...)
		live[i].off = uint32(off)
	}
	s.arena = dst
}

// Empty says src could not be read to its end at monotonic time now (a
// record still being written): it will deliver nothing older than
// now - window.
func (m *Merger) Empty(src int, now int64) { m.raise(src, now-m.window) }

// Quiet says src was read to its end at monotonic time now (read before
// the look that found it so) with no record in progress: a record it
// delivers later was reserved after the look, and stamped after it.
func (m *Merger) Quiet(src int, now int64) { m.raise(src, now-min(QuietSlack, m.window)) }

func (m *Merger) raise(src int, b int64) {
	if b > m.src[src].bound {
		m.src[src].bound = b
	}
}

// Release hands on every held record the watermark allows, in order.
func (m *Merger) Release() {
	w := int64(math.MaxInt64)
	for i := range m.src {
		w = min(w, m.src[i].bound)
	}
	m.releaseTo(w)
}

// Flush hands on everything held, in order: the sources are done.
func (m *Merger) Flush() { m.releaseTo(math.MaxInt64) }

// sideSrc stands for the side heap among the sources.
const sideSrc = -2

func (m *Merger) releaseTo(w int64) {
	for m.held > 0 {
		// The source with the oldest head, and the next oldest head: the
		// first gives every record up to the second in one run.
		best, bts, next := -1, int64(math.MaxInt64), int64(math.MaxInt64)
		for i := range m.src {
			s := &m.src[i]
			if s.head == len(s.q) {
				continue
			}
			if ts := s.q[s.head].ts; ts < bts {
				best, bts, next = i, ts, bts
			} else if ts < next {
				next = ts
			}
		}
		if len(m.side) > 0 {
			if ts := m.side[0].ts; ts < bts {
				best, bts, next = sideSrc, ts, bts
			} else if ts < next {
				next = ts
			}
		}
		if best == -1 || bts > w {
			return
		}
		limit := min(w, next)
		if best == sideSrc {
			for len(m.side) > 0 && m.side[0].ts <= limit {
				r := m.side.pop()
				m.held--
				m.emitted = r.ts
				m.st.Records++
				m.emit(r.src, r.ts, r.buf)
				m.free = append(m.free, r.buf)
			}
			continue
		}
		s := &m.src[best]
		q, h := s.q, s.head
		for h < len(q) && q[h].ts <= limit {
			m.emitted = q[h].ts
			m.emit(best, q[h].ts, s.bytes(&q[h]))
			h++
		}
		n := h - s.head
		m.held -= n
		m.st.Records += uint64(n)
		if s.nOwned > 0 {
			s.nOwned = max(0, s.nOwned-n)
			if s.nOwned == 0 {
				s.arena = s.arena[:0]
			}
		}
		if h == len(q) {
			s.q, h = q[:0], 0
		}
		s.head = h
	}
}

// Held is the number of records waiting for the watermark.
func (m *Merger) Held() int { return m.held }

// Stats returns the counters so far.
func (m *Merger) Stats() Stats {
	s := m.st
	s.LatePerSource = append([]uint64(nil), m.st.LatePerSource...)
	return s
}

// heldHeap is a binary min-heap on (ts, seq), written out rather than
// through container/heap, whose interface boxing would allocate per record.
type heldHeap []held

func (h heldHeap) less(i, j int) bool {
	if h[i].ts != h[j].ts {
		return h[i].ts < h[j].ts
	}
	return h[i].seq < h[j].seq
}

func (h *heldHeap) push(r held) {
	*h = append(*h, r)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *heldHeap) pop() held {
	a := *h
	r := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a[n] = held{}
	a = a[:n]
	for i := 0; ; {
		l, s := 2*i+1, i
		if l < n && a.less(l, s) {
			s = l
		}
		if l+1 < n && a.less(l+1, s) {
			s = l + 1
		}
		if s == i {
			break
		}
		a[i], a[s] = a[s], a[i]
		i = s
	}
	*h = a
	return r
}
