package ringbuf

import (
	"context"
	"unsafe"

	"github.com/xdpscan/xdpscan/internal/reorder"
)

// RunMerged reads every ring until ctx is cancelled and they are drained,
// and hands each record to handle in timestamp order (stamp gives a
// record's CLOCK_MONOTONIC ns) within windowNs (0: reorder.DefaultWindow);
// a record later than that comes at once, out of order, and is counted
// in the returned stats' Late. hdr and payload are valid only during the
// call. The merge's state and stats carry over from one call to the
// next (the stats count since the rings were opened).
//
// Records are merged where they lie in the rings: each is read once,
// queued by reference and given back to the kernel only once handed on,
// so nothing is copied (unless a ring's held records reach half of it:
// reorder.Merger.Spill). One pass reads up to 4 x BatchSize records from
// each ring, then releases what the watermark allows in runs per ring.
func (m *Multi[T]) RunMerged(ctx context.Context, windowNs int64, stamp func(*T) int64, handle func(src int, hdr *T, payload []byte)) (reorder.Stats, error) {
	size := int(unsafe.Sizeof(*new(T)))
	commitEvery := 4 * m.opts.BatchSize
	m.handle = handle
	defer func() { m.handle = nil }()
	if m.mg == nil {
		m.mg = reorder.New(len(m.rings), windowNs, func(src int, _ int64, rec []byte) {
			m.handle(src, (*T)(unsafe.Pointer(unsafe.SliceData(rec))), rec[size:])
		})
		m.mg.Grow(commitEvery)
		for i, r := range m.rings {
			m.mg.SetMemory(i, r.data)
		}
	}
	mg := m.mg
	err := m.loop(ctx, func(now int64) (total int, full bool) {
		for i, r := range m.rings {
			got, short := r.read(commitEvery, size, func(raw []byte) {
				// The header and the payload lie together in the ring.
				mg.PushAt(i, stamp((*T)(unsafe.Pointer(unsafe.SliceData(raw)))), r.last, raw)
			})
			switch {
			case got == commitEvery:
				full = true
			case r.idle():
				mg.Quiet(i, now)
			default:
				mg.Empty(i, now)
			}
			if got > 0 {
				m.records[i].Add(uint64(got - short))
				if short > 0 {
					m.short.Add(uint64(short))
				}
			}
			total += got
		}
		mg.Release()
		m.giveBack(mg)
		return total, full
	})
	mg.Flush()
	m.giveBack(mg)
	return mg.Stats(), err
}

// giveBack returns to the kernel what each ring's released records held,
// and copies out the held records of a ring they fill past half.
func (m *Multi[T]) giveBack(mg *reorder.Merger) {
	for i, r := range m.rings {
		pos, ok := mg.Pinned(i)
		if ok && r.cons-pos > (r.mask+1)/2 {
			mg.Spill(i)
			ok = false
		}
		if !ok {
			pos = r.cons
		}
		r.commitTo(pos)
	}
}
