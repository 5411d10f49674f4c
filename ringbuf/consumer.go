// Package ringbuf is a typed, batched consumer of a BPF ring buffer.
//
// It decodes fixed-size records into reused values of T (no allocation per
// record), hands them to a callback in batches, and on cancellation drains
// what is already in the ring before returning, so nothing submitted before
// the stop is lost. Losses on the producer side (failed bpf_ringbuf_reserve)
// are invisible to a reader; xdpscan's programs count them in their
// "counters" map (see loader.Counters.RingLost).
//
// Kernel floor: 5.8 (BPF_MAP_TYPE_RINGBUF; internal/kfloor.RingBuffer).
package ringbuf

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
)

// Options tune a Consumer. The zero value is usable.
type Options struct {
	// BatchSize is the most records handed to the callback at once.
	// Default 256.
	BatchSize int
	// PollInterval is how long a read waits for more records before
	// delivering a partial batch. It bounds the latency of a record
	// submitted with BPF_RB_NO_WAKEUP, and how soon a cancellation is seen.
	// Default 5ms.
	PollInterval time.Duration
	// IdlePollInterval is what PollInterval grows to, doubling, while
	// polls find the ring empty (a scan's cooldown, a quiet link); a
	// record brings it back. Each poll is a timer and a wakeup (in a VM,
	// exits): at 5 ms, 200 a second, 2% of a CPU per idle second here.
	// Records submitted with a wakeup are read at once either way.
	// Default 8 x PollInterval.
	IdlePollInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Millisecond
	}
	if o.IdlePollInterval < o.PollInterval {
		o.IdlePollInterval = 8 * o.PollInterval
	}
	return o
}

// Stats are a Consumer's own counters, safe to read while it runs.
type Stats struct {
	Records      uint64 // records decoded and delivered
	Batches      uint64 // callback invocations
	Bytes        uint64 // record payload bytes read
	ShortRecords uint64 // records smaller than T, skipped
}

// Consumer reads records of type T, a fixed-size struct whose layout matches
// the C struct (the bpf2go-generated type is the one to use).
type Consumer[T any] struct {
	ring  *ring
	opts  Options
	batch []T

	records, batches, bytes, short atomic.Uint64
}

// New opens a consumer on a BPF_MAP_TYPE_RINGBUF map.
func New[T any](m *ebpf.Map, opts Options) (*Consumer[T], error) {
	r, err := openRing(m)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer %s: %w", m, err)
	}
	opts = opts.withDefaults()
	return &Consumer[T]{ring: r, opts: opts, batch: make([]T, opts.BatchSize)}, nil
}

// Stats returns the consumer's counters so far.
func (c *Consumer[T]) Stats() Stats {
	return Stats{
		Records:      c.records.Load(),
		Batches:      c.batches.Load(),
		Bytes:        c.bytes.Load(),
		ShortRecords: c.short.Load(),
	}
}

// Pending is the number of bytes waiting in the ring.
func (c *Consumer[T]) Pending() int { return int(c.ring.available()) }

// Run reads until ctx is cancelled, then drains the ring and returns nil.
// handle receives batches in submission order; the slice is reused after
// handle returns, so copy what must outlive the call. Run must not be called
// concurrently with itself.
func (c *Consumer[T]) Run(ctx context.Context, handle func(batch []T)) error {
	n := 0
	return c.loop(ctx, func(rec *T, _ []byte) {
		c.batch[n] = *rec
		n++
		if n == len(c.batch) {
			handle(c.batch)
			c.batches.Add(1)
			n = 0
		}
	}, func() {
		if n > 0 {
			handle(c.batch[:n])
			c.batches.Add(1)
			n = 0
		}
	})
}

// RunRecords is Run for records with a variable-length tail: T is the fixed
// header and payload the bytes after it. Both are valid only during the
// call. Nothing is batched: the caller's writer buffers.
func (c *Consumer[T]) RunRecords(ctx context.Context, handle func(hdr *T, payload []byte)) error {
	return c.loop(ctx, handle, func() {})
}

// loop reads records, hands each decoded one to onRecord, and calls idle
// whenever the ring is momentarily empty (the time to deliver a partial
// batch). It returns after draining once ctx is done. Records are read in
// place and given back to the kernel once per run of up to commitEvery, so
// a payload is valid only during onRecord.
func (c *Consumer[T]) loop(ctx context.Context, onRecord func(*T, []byte), idle func()) error {
	size := int(unsafe.Sizeof(*new(T)))
	commitEvery := 4 * c.opts.BatchSize
	draining := false
	var drainUntil time.Time
	poll := c.opts.PollInterval
	for {
		var got, short, bytes int
		for got < commitEvery {
			raw, ok := c.ring.next()
			if !ok {
				break
			}
			got++
			bytes += len(raw)
			if len(raw) < size {
				short++
				continue
			}
			onRecord((*T)(unsafe.Pointer(unsafe.SliceData(raw))), raw[size:])
		}
		if got > 0 {
			poll = c.opts.PollInterval
			c.ring.commit()
			c.records.Add(uint64(got - short))
			c.short.Add(uint64(short))
			c.bytes.Add(uint64(bytes))
			if got == commitEvery {
				continue
			}
		}
		idle()
		if draining {
			if !c.ring.idle() && time.Now().Before(drainUntil) {
				// Stopped at a record a program is still writing: it
				// is submitted within microseconds of the program's
				// end; leaving it would lose what was counted.
				time.Sleep(busyRecordWait)
				continue
			}
			return nil
		}
		if ctx.Err() != nil {
			// One more pass that does not wait: everything submitted
			// before the cancellation is in the ring by now.
			draining = true
			drainUntil = time.Now().Add(busyDrainLimit)
			continue
		}
		if err := c.ring.wait(poll); err != nil {
			return err
		}
		if got == 0 {
			poll = min(2*poll, c.opts.IdlePollInterval)
		}
	}
}

// Close releases the ring. Call it after Run has returned.
func (c *Consumer[T]) Close() error { return c.ring.close() }

// A drain that finds a record still being written waits for it, a
// busyRecordWait at a time, for at most busyDrainLimit: a record is
// reserved and submitted within one program run (microseconds), so only
// a stuck producer, which cannot happen, would use the limit up.
const (
	busyRecordWait = 50 * time.Microsecond
	busyDrainLimit = time.Second
)
