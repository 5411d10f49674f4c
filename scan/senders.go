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

// SenderNext is, with --senders N > 1, each sender's next position in the
// pass (Position.Pass): sender k sends the positions of its slice, those
// p with p / Shards % N == k among this shard's, in order, and every one
// of them below Next[k] has been handed to the kernel. Position.Next is
// then the least of them. The zero value: one sender.
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

// senderConfig is sender k's part of the scan: a shard of N times as many
// (its slice of this shard's positions), its share of the rate, and where
// it resumes. Its probes keep the source ports one sender would give them
// (sportShards).
func (c Config) senderConfig(k int) Config {
	n := uint64(c.senders())
	s := c
	s.sportShards = c.Shards
	s.Shard, s.Shards = c.Shard+c.Shards*uint64(k), c.Shards*n
	s.Rate = rateShare(c.Rate, k, int(n))
	s.Resume = Position{Pass: c.Resume.Pass, Next: c.Resume.Next}
	if c.Resume.Senders.N > 0 {
		s.Resume.Next = c.Resume.Senders.Next[k]
	} else {
		// One sender's position: everything below it was sent, nothing
		// at or past it: the first of this slice's positions at or past it.
		s.Resume.Next = firstAtOrAfter(c.Resume.Next, s.Shard, s.Shards)
	}
	s.senderIndex = k + 1
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

// senderCells are the senders' published positions (Progress.Position).
type senderCells struct {
	cells []positionCell
	n     uint64 // probe positions per pass
}

// publishPosition stores the position of the sender cfg is (or the one
// position of a single sender).
func (c Config) publishPosition(p *Progress, pos Position, n uint64) {
	if c.senderIndex == 0 {
		p.publishPosition(pos, n)
		return
	}
	if pos.Next >= n {
		pos = Position{Pass: pos.Pass + 1}
	}
	p.senders.Load().cells[c.senderIndex-1].store(pos)
}

// composePositions is the scan's position from its senders': the least
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
	if !started { // every sender at the pass's start: one position says it
		return Position{Pass: pass}
	}
	return out
}

// positions loads every sender's position; ok once all have published.
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

// passBarrier holds each sender at the end of a pass until all have
// finished it: a resume position names one pass.
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
// first one's transmitter, extra the others'. Each sender
// runs on its own OS thread pinned to its own CPU of the process's
// affinity (on AF_PACKET the CPU picks the TX queue, PACKET_QDISC_BYPASS
// keeps the qdisc lock out), walks its slice of the permutation at its
// share of the rate, and publishes its own position. It returns the
// transmitters it opened (the caller sums their counts and closes them).
func sendAll(ctx context.Context, cfg Config, tx transmit.Sender, extra []transmit.Sender, progress *Progress) (Position, error) {
	n := cfg.senders()
	if n == 1 {
		return sendProbes(ctx, cfg, tx, progress)
	}
	if len(extra) != n-1 {
		return cfg.Resume, fmt.Errorf("--senders %d with %d transmitters", n, len(extra)+1)
	}
	txs := append([]transmit.Sender{tx}, extra...)
	total := cfg.Targets.Len() * uint64(len(cfg.Ports))
	progress.senders.Store(&senderCells{cells: make([]positionCell, n), n: total})
	cpus := processCPUs
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	barrier := newPassBarrier(n)
	ps := make([]Position, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := 0; k < n; k++ {
		sc := cfg.senderConfig(k)
		sc.passDone = barrier.wait
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if len(cpus) > 1 {
				var set unix.CPUSet
				set.Set(cpus[k%len(cpus)])
				_ = unix.SchedSetaffinity(0, &set) // a refusal costs speed, not correctness
			}
			ps[k], errs[k] = sendProbes(ctx, sc, txs[k], progress)
			if errs[k] != nil {
				cancel() // the others stop where they are: the position stays exact
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return composePositions(ps, total), err
		}
	}
	for _, err := range errs {
		if err != nil {
			return composePositions(ps, total), err
		}
	}
	return composePositions(ps, total), nil
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

// validSenders checks a position's sender part: as many senders as this
// scan runs, each at one of its slice's positions (or the pass's end).
func (c Config) validSenders(pos Position, n uint64) error {
	s := pos.Senders
	if s.N == 0 {
		return nil
	}
	if s.N != c.senders() {
		return &PositionError{Field: "senders", Value: uint64(s.N), Why: itoa(uint64(c.senders())) +
			" senders (resume with --senders " + itoa(uint64(s.N)) + ", as the scan was run)"}
	}
	least := uint64(math.MaxUint64)
	for k := 0; k < s.N; k++ {
		sc := c.senderConfig(k)
		next := s.Next[k]
		least = min(least, next)
		if next != n && next != 0 && next%sc.Shards != sc.Shard && !(next < sc.Shard) {
			return &PositionError{Field: "senders", Value: next, Why: "positions of sender " + itoa(uint64(k)) + " of " + itoa(uint64(s.N))}
		}
		if next > n {
			return &PositionError{Field: "senders", Value: next, Why: itoa(n) + " probe positions per pass"}
		}
	}
	if least != pos.Next {
		return &PositionError{Field: "next", Value: pos.Next, Why: "the senders' least position " + itoa(least)}
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
