package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/transmit"
)

// MaxSenders is the most sending threads a scan runs (--senders).
const MaxSenders = 64

// SenderNext is, for a walk in slices (--senders N > 1, or a resume of
// one), each slice's next position in the pass (Position.Pass): slice j
// holds this shard's positions p with p / Shards % N == j, is sent in
// order, and every one of them below Next[j] has been handed to the
// kernel. Position.Next is then the least of them. The zero value: one
// sender, one walk. The JSON key stays "senders" (it held one position a
// sender before the slices), so a resume file from then still reads: its
// N slices are walked by however many senders the resume asks for.
type SenderNext struct {
	N    int
	Next [MaxSenders]uint64
}

// MarshalJSON writes the N positions as an array.
func (s SenderNext) MarshalJSON() ([]byte, error) { return json.Marshal(s.Next[:s.N]) }

// UnmarshalJSON reads an array of at most MaxSenders positions.
func (s *SenderNext) UnmarshalJSON(b []byte) error {
	var v []uint64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if len(v) > MaxSenders {
		return fmt.Errorf("%d sender positions: at most %d", len(v), MaxSenders)
	}
	*s = SenderNext{N: len(v)}
	copy(s.Next[:], v)
	return nil
}

// senders is the number of sending threads (Config.Senders; 0 is 1).
func (c Config) senders() int { return max(c.Senders, 1) }

// walkSlices is how many slices a walk with more than one sender is cut
// into. The senders take a batch at a time from whichever slice is free,
// so a sender slowed by its CPU's other work (the reply goroutine,
// softirqs, other processes on a busy host) no longer holds the scan back
// while the others sit idle. Measured with one fixed slice a sender
// (--tx xdp, 2 senders, /16 × 4 ports): the first sender finished 2-34%
// before the second, in 4 runs out of 4.
const walkSlices = MaxSenders

// slices is how many slices this walk has: a resumed walk keeps its
// file's, a new one with more than one sender walkSlices, one sender none.
func (c Config) slices() int {
	if c.Resume.Senders.N > 0 {
		return c.Resume.Senders.N
	}
	if c.senders() > 1 {
		return walkSlices
	}
	return 0
}

// sliceConfig is slice j's part of a walk in v slices: a shard of v
// times as many, and where it resumes. Its probes keep the source ports
// one sender would give them (sportShards).
func (c Config) sliceConfig(j, v int) Config {
	s := c
	s.sportShards = c.Shards
	s.Shard, s.Shards = c.Shard+c.Shards*uint64(j), c.Shards*uint64(v)
	s.Resume = Position{Pass: c.Resume.Pass, Next: c.Resume.Next}
	if c.Resume.Senders.N > 0 {
		s.Resume.Next = c.Resume.Senders.Next[j]
	} else {
		// One walk's position: everything below it was sent, nothing at
		// or past it: the first of this slice's positions at or past it.
		s.Resume.Next = firstAtOrAfter(c.Resume.Next, s.Shard, s.Shards)
	}
	return s
}

// firstAtOrAfter is the least p >= from with p % step == rem.
func firstAtOrAfter(from, rem, step uint64) uint64 {
	if from <= rem {
		return rem
	}
	return from + (rem+step-from%step)%step
}

// rateShare is sender k's share of rate over n senders: the shares add
// up to rate exactly (the last takes what rounding left).
func rateShare(rate float64, k, n int) float64 {
	if math.IsInf(rate, 1) || n == 1 {
		return rate
	}
	share := rate / float64(n)
	if k == n-1 {
		return rate - share*float64(n-1)
	}
	return share
}

// senderCells are the slices' published positions (Progress.Position).
type senderCells struct {
	cells []positionCell
	n     uint64 // probe positions per pass
}

// store publishes slice j's position, in the normal form of
// Progress.publishPosition.
func (s *senderCells) store(j int, pos Position) {
	if pos.Next >= s.n {
		pos = Position{Pass: pos.Pass + 1}
	}
	s.cells[j].store(pos)
}

// composePositions is the scan's position from its slices': the least
// pass any is in, and each one's next position in it (the pass's end for
// one already past it).
func composePositions(ps []Position, n uint64) Position {
	pass := uint64(math.MaxUint64)
	for _, p := range ps {
		pass = min(pass, p.Pass)
	}
	out := Position{Pass: pass, Next: math.MaxUint64, Senders: SenderNext{N: len(ps)}}
	started := false
	for k, p := range ps {
		next := p.Next
		if p.Pass > pass {
			next = n
		}
		out.Senders.Next[k] = next
		out.Next = min(out.Next, next)
		started = started || next != 0
	}
	if !started { // every slice at the pass's start: one position says it
		return Position{Pass: pass}
	}
	return out
}

// position loads every slice's position; ok once all have published.
func (s *senderCells) position() (Position, bool) {
	ps := make([]Position, len(s.cells))
	for k := range s.cells {
		p, ok := s.cells[k].load()
		if !ok {
			return Position{}, false
		}
		ps[k] = p
	}
	return composePositions(ps, s.n), true
}

// passBarrier holds each sender at the end of a pass until all slices
// have finished it: a resume position names one pass.
type passBarrier struct {
	mu      sync.Mutex
	n       int
	waiting int
	gen     chan struct{}
}

func newPassBarrier(n int) *passBarrier { return &passBarrier{n: n, gen: make(chan struct{})} }

func (b *passBarrier) wait(ctx context.Context) error {
	b.mu.Lock()
	ch := b.gen
	b.waiting++
	if b.waiting == b.n {
		b.waiting = 0
		b.gen = make(chan struct{})
		close(ch)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openExtraSenders opens the transmitters of senders 2..N, before Ready
// (which may drop the privileges that takes).
func openExtraSenders(cfg Config, newTx func() (transmit.Sender, error)) ([]transmit.Sender, error) {
	var extra []transmit.Sender
	for len(extra) < cfg.senders()-1 {
		t, err := newTx()
		if err != nil {
			for _, t := range extra {
				t.Close()
			}
			return nil, fmt.Errorf("open transmitter %d of --senders %d: %w", len(extra)+2, cfg.senders(), err)
		}
		extra = append(extra, t)
	}
	return extra, nil
}

// sendAll sends the scan's probes with cfg.Senders threads: tx is the
// first one's transmitter, extra the others'. Each sender runs on its own
// OS thread pinned to its own CPU of the process's affinity (on AF_PACKET
// the CPU picks the TX queue, PACKET_QDISC_BYPASS keeps the qdisc lock
// out), at its share of the rate, and sends a batch at a time from
// whichever slice of the walk is free (walkSlices). Each slice publishes
// its own position. The caller sums the transmitters' counts and closes
// them.
func sendAll(ctx context.Context, cfg Config, tx transmit.Sender, extra []transmit.Sender, progress *Progress) (Position, error) {
	n := cfg.senders()
	if len(extra) != n-1 {
		return cfg.Resume, fmt.Errorf("--senders %d with %d transmitters", n, len(extra)+1)
	}
	if cfg.slices() == 0 {
		return sendProbes(ctx, cfg, tx, progress)
	}
	w := newSliceWalk(cfg, progress)
	txs := append([]transmit.Sender{tx}, extra...)
	cpus := processCPUs
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n > 1 && len(cpus) > 1 {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var set unix.CPUSet
				set.Set(cpus[k%len(cpus)])
				_ = unix.SchedSetaffinity(0, &set) // a refusal costs speed, not correctness
			}
			if errs[k] = w.send(ctx, k, txs[k]); errs[k] != nil {
				cancel() // the others stop where they are: the position stays exact
			}
		}()
	}
	wg.Wait()
	pos := w.position()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return pos, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// sliceWalk is a walk in slices shared by the senders.
type sliceWalk struct {
	cfg      Config
	n        uint64 // positions per pass
	senders  int
	slices   []walkSlice
	cells    *senderCells
	progress *Progress
	barrier  *passBarrier
}

// walkSlice is one slice: its part of the scan, and the position of its
// next probe (a pass walked to its end is the next pass's start). Its
// lock is held across a batch's fill and send, so the batches of a slice
// go out in order and its position stays exact.
type walkSlice struct {
	mu  sync.Mutex
	j   int // its place in sliceWalk.slices
	cfg Config
	pos Position
}

func newSliceWalk(cfg Config, progress *Progress) *sliceWalk {
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	v := cfg.slices()
	w := &sliceWalk{cfg: cfg, n: n, senders: cfg.senders(), slices: make([]walkSlice, v),
		cells: &senderCells{cells: make([]positionCell, v), n: n}, progress: progress, barrier: newPassBarrier(cfg.senders())}
	for j := range w.slices {
		s := &w.slices[j]
		s.j, s.cfg = j, cfg.sliceConfig(j, v)
		s.pos = s.cfg.Resume
		if s.pos.Next >= n {
			s.pos = Position{Pass: s.pos.Pass + 1}
		}
		w.cells.store(j, s.pos)
	}
	progress.senders.Store(w.cells)
	return w
}

// send is sender k's loop: pass after pass, a batch at a time from the
// next free slice that has probes left in the pass, then the pass's
// barrier. Sender k starts at its own part of the slices, so the senders
// seldom meet on one.
func (w *sliceWalk) send(ctx context.Context, k int, tx transmit.Sender) error {
	rate := rateShare(w.cfg.Rate, k, w.senders)
	limiter := NewRateLimiter(rate)
	limiter.MinBatch = transmit.MinBatch(rate, tx.Batch())
	lens := make([]int, tx.Batch())
	templates := newProbeTemplates(w.cfg)
	next := k * len(w.slices) / w.senders
	batches := 0
	for pass := w.cfg.Resume.Pass; pass <= uint64(w.cfg.Retries); pass++ {
		if pass > w.cfg.Resume.Pass {
			if err := w.barrier.wait(ctx); err != nil {
				return err
			}
		}
		perm := w.cfg.passOrder(pass)
		for {
			c := limiter.Next(ctx, len(lens))
			if c == 0 {
				return ctx.Err()
			}
			s, busy := w.take(pass, &next)
			if s == nil {
				if !busy {
					break // every slice is past this pass
				}
				// Another sender holds the last slices for a batch.
				runtime.Gosched()
				continue
			}
			first, filled := s.pos.Next, 0
			for ; filled < c && s.pos.Next < w.n; s.pos.Next += s.cfg.Shards {
				addr, port, sport := s.cfg.probeAt(perm, s.pos)
				lens[filled] = templates.fill(tx.Buffer(filled), &s.cfg, addr, port, sport)
				filled++
			}
			var err error
			if filled > 0 {
				err = tx.Send(ctx, lens[:filled])
			}
			if err != nil {
				s.pos.Next = first // the batch is sent again on resume
			} else {
				w.progress.Sent.Add(uint64(filled))
			}
			if s.pos.Next >= w.n {
				s.pos = Position{Pass: pass + 1}
			}
			w.cells.store(s.j, s.pos)
			s.mu.Unlock()
			if batches++; batches%64 == 0 || err != nil {
				_, errs := tx.Counts()
				w.progress.TxErrors.Store(errs)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// take locks and returns the first slice from *next on with probes left
// in pass, and moves *next past it. busy says a slice was held by another
// sender (it may have probes left).
func (w *sliceWalk) take(pass uint64, next *int) (s *walkSlice, busy bool) {
	v := len(w.slices)
	for i := range v {
		j := (*next + i) % v
		s := &w.slices[j]
		if !s.mu.TryLock() {
			busy = true
			continue
		}
		if s.pos.Pass == pass {
			if s.pos.Next < s.cfg.Shard {
				s.pos.Next = s.cfg.Shard
			}
			if s.pos.Next < w.n {
				*next = j + 1
				return s, false
			}
			s.pos = Position{Pass: pass + 1}
			w.cells.store(j, s.pos)
		}
		s.mu.Unlock()
	}
	return nil, busy
}

// position is the walk's position once every sender has stopped.
func (w *sliceWalk) position() Position {
	ps := make([]Position, len(w.slices))
	for j := range w.slices {
		ps[j] = w.slices[j].pos
	}
	return composePositions(ps, w.n)
}

// processCPUs are the CPUs the process was allowed when it started.
// Senders are spread over these, not over the calling thread's: by then
// the first --tx xdp transmitter has pinned that thread to the one CPU it
// was on (transmit.NewXDP), and every sender went to that CPU, which on
// veth also put all their frames into one peer receive queue
// (veth_select_rxq: the CPU number modulo the queues). Measured before
// this, --senders 2 on a 2-queue testbed: 152,529 frames into queue 0,
// 1,536 into queue 1.
var processCPUs = allowedCPUs()

// allowedCPUs are the CPUs this thread may run on.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for c := 0; c < 1024 && len(out) < set.Count(); c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// validSenders checks a position's slices: each at one of its own
// positions (or the pass's end), whatever the number of slices (a resume
// may have other --senders than the scan it resumes: the slices, not the
// senders, are in the file).
func (c Config) validSenders(pos Position, n uint64) error {
	s := pos.Senders
	if s.N == 0 {
		return nil
	}
	least := uint64(math.MaxUint64)
	shards := c.Shards * uint64(s.N)
	for j := 0; j < s.N; j++ {
		shard := c.Shard + c.Shards*uint64(j)
		next := s.Next[j]
		least = min(least, next)
		if next != n && next != 0 && next%shards != shard && !(next < shard) {
			return &PositionError{Field: "senders", Value: next, Why: "positions of slice " + itoa(uint64(j)) + " of " + itoa(uint64(s.N))}
		}
		if next > n {
			return &PositionError{Field: "senders", Value: next, Why: itoa(n) + " probe positions per pass"}
		}
	}
	if least != pos.Next {
		return &PositionError{Field: "next", Value: pos.Next, Why: "the slices' least position " + itoa(least)}
	}
	return nil
}

// newXDPSender is further --tx xdp sender k: its own frame slots and
// state in the one scan program (loaded with a state and slots for every
// sender, loaderConfig), which is attached. A second instance of the
// program, unattached, entered and left the kernel's XDP dispatcher on
// every BPF_PROG_RUN call (two text pokes, IPIs to every CPU): 2 senders
// were slower than 1 (measured 57k-205k/s against 104k-622k/s).
func newXDPSender(cfg Config, prog *loader.Scan, k int) (transmit.Sender, error) {
	t, err := transmit.NewXDPAt(cfg.iface(), prog, k)
	if err != nil {
		return nil, err
	}
	return &ownedXDP{XDP: t}, nil
}

// ownedXDP is a further sender's transmitter.
type ownedXDP struct {
	*transmit.XDP
}

// Counts leaves the failures out: an XDP transmitter counts them from the
// interface's tx_dropped, which the first sender's transmitter already
// counts for all of them.
func (o *ownedXDP) Counts() (sent, errs uint64) {
	sent, _ = o.XDP.Counts()
	return sent, 0
}

func (o *ownedXDP) Close() error { return o.XDP.Close() }

// perCPUStats are the scan program's packets and ring losses by CPU.
func perCPUStats(prog *loader.Scan) (rx, lost []uint64, err error) {
	if rx, err = loader.PacketsPerCPU(prog.Objects.Counters); err != nil {
		return nil, nil, err
	}
	lost, err = loader.RingLostPerCPU(prog.Objects.Counters)
	return rx, lost, err
}

// resentCounts are the --tx xdp transmitters' resends (transmit.XDP.Resent):
// the frames sent again, summed, and the interface's refusals. Each
// sender reads the interface's one count, all queues', from its start to
// its end, so each saw every refusal of the scan: the largest is the
// interface's, the sum would count each once per sender.
func resentCounts(txs []transmit.Sender) (frames, refused uint64) {
	for _, t := range txs {
		if r, ok := t.(interface{ Resent() (uint64, uint64) }); ok {
			f, n := r.Resent()
			frames, refused = frames+f, max(refused, n)
		}
	}
	return frames, refused
}
