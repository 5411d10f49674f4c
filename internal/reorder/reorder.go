// Package reorder merges records from several sources (per-CPU ring
// buffers, several interfaces) into one stream in timestamp order, within a
// bounded reorder window.
//
// Each source is nearly ordered by itself (a per-CPU ring is written by one
// CPU at a time), and the sources are read in turn, so a record can reach
// the merger after a newer one from another source. The merger holds
// records until no source can still deliver an older one: a source that
// was read up to time t will deliver nothing older than t (its own order),
// and a source found empty at (monotonic) time now will deliver nothing
// older than now-Window (a record is stamped before it is submitted, and
// Window bounds how long that takes plus how long the reader lags). The
// watermark is the least of these bounds; records at or below it are
// released in order.
//
// A record that arrives below what was already released is late: it is
// counted (Stats.Late, and how late) and released at once, out of order.
// It is never dropped.
//
// Records are copied into reused buffers: no allocation per record once
// the buffers have grown to the held working set.
package reorder

import "math"

// DefaultWindow is how long an empty source's records may take to show up
// after being stamped, in nanoseconds: 50 ms. The ring reader polls every
// 5 ms (ringbuf.Options.PollInterval) and hands over up to 1024 records
// per ring per turn (about 0.5 ms at 2M records/s); a capture record is
// stamped after its reservation and submitted microseconds later, unless
// the CPU is taken for an interrupt or, in a VM, by the hypervisor (steal
// of tens of ms was seen on this shared 2-vCPU machine). 50 ms keeps at
// most 50 ms of records held (100k at 2M/s) only while a source is idle;
// with every source busy the watermark follows the slowest source's latest
// record and little is held.
const DefaultWindow = 50_000_000

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
}

// Emit receives each record in order; data is valid only during the call.
type Emit func(src int, ts int64, data []byte)

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
	bound   []int64 // per source: nothing older than this will come from it
	h       heldHeap
	free    [][]byte
	seq     uint64
	emitted int64 // timestamp of the last record released in order
	st      Stats
}

// New makes a merger of n sources with the given window in nanoseconds
// (0: DefaultWindow).
func New(n int, windowNs int64, emit Emit) *Merger {
	if windowNs <= 0 {
		windowNs = DefaultWindow
	}
	m := &Merger{window: windowNs, emit: emit, bound: make([]int64, n), emitted: math.MinInt64}
	for i := range m.bound {
		m.bound[i] = math.MinInt64
	}
	m.st.LatePerSource = make([]uint64, n)
	return m
}

// Push adds a record from src stamped ts (monotonic nanoseconds); data is
// copied.
func (m *Merger) Push(src int, ts int64, data []byte) {
	if ts < m.emitted {
		m.st.Late++
		m.st.LatePerSource[src]++
		m.st.MaxLateNs = max(m.st.MaxLateNs, m.emitted-ts)
		m.st.Records++
		m.emit(src, ts, data)
		return
	}
	if ts > m.bound[src] {
		m.bound[src] = ts
	}
	var buf []byte
	if n := len(m.free); n > 0 {
		buf, m.free = m.free[n-1][:0], m.free[:n-1]
	}
	m.seq++
	m.h.push(held{ts: ts, seq: m.seq, src: src, buf: append(buf, data...)})
	m.st.MaxHeld = max(m.st.MaxHeld, len(m.h))
}

// Empty says src had nothing to read at monotonic time now: it will
// deliver nothing older than now - window.
func (m *Merger) Empty(src int, now int64) {
	if b := now - m.window; b > m.bound[src] {
		m.bound[src] = b
	}
}

// Release hands on every held record the watermark allows, in order.
func (m *Merger) Release() {
	w := int64(math.MaxInt64)
	for _, b := range m.bound {
		w = min(w, b)
	}
	m.releaseTo(w)
}

// Flush hands on everything held, in order: the sources are done.
func (m *Merger) Flush() { m.releaseTo(math.MaxInt64) }

func (m *Merger) releaseTo(w int64) {
	for len(m.h) > 0 && m.h[0].ts <= w {
		r := m.h.pop()
		m.emitted = r.ts
		m.st.Records++
		m.emit(r.src, r.ts, r.buf)
		m.free = append(m.free, r.buf)
	}
}

// Held is the number of records waiting for the watermark.
func (m *Merger) Held() int { return len(m.h) }

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
