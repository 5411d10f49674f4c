package scan

import (
	"sync/atomic"
)

// positionCell is the sender's position, published after every batch so
// another goroutine (the resume checkpoint) can read it while probes are
// sent: a sequence lock over two words, one writer (the sending loop), no
// lock on the hot path.
type positionCell struct {
	seq, pass, next atomic.Uint64
}

func (c *positionCell) store(p Position) {
	c.seq.Add(1) // odd: a store is under way
	c.pass.Store(p.Pass)
	c.next.Store(p.Next)
	c.seq.Add(1)
}

// load returns the last stored position; ok is false before the first.
func (c *positionCell) load() (p Position, ok bool) {
	for {
		s := c.seq.Load()
		if s&1 != 0 {
			continue
		}
		p = Position{Pass: c.pass.Load(), Next: c.next.Load()}
		if c.seq.Load() == s {
			return p, s != 0
		}
	}
}

// Position is where the sender stands: every probe before it has been
// handed to the kernel (the socket, the XDP transmitter, or a connect
// worker). ok is false until sending starts. Replies to the last probes
// may still be on their way: a checkpoint must wait for them (--wait)
// before it counts them as done.
func (p *Progress) Position() (pos Position, ok bool) {
	if s := p.senders.Load(); s != nil {
		return s.position()
	}
	return p.position.load()
}

// publishPosition stores pos, a position of a walk over n probes per pass,
// in its normal form: a pass walked to its end is the next pass's start.
func (p *Progress) publishPosition(pos Position, n uint64) {
	if pos.Next >= n {
		pos = Position{Pass: pos.Pass + 1}
	}
	p.position.store(pos)
}

// ValidPosition says whether pos is a position a walk of this configuration can
// reach: within the passes (or the end), below the probe count, and one of
// this shard's positions.
func (c Config) ValidPosition(pos Position) error {
	n := c.Targets.Len() * uint64(len(c.Ports))
	switch {
	case pos.Pass == uint64(c.Retries)+1 && pos.Next == 0:
		return nil // every probe sent
	case pos.Pass > uint64(c.Retries):
		return &PositionError{Field: "pass", Value: pos.Pass, Why: passRange(c.Retries)}
	case pos.Next >= n:
		return &PositionError{Field: "next", Value: pos.Next, Why: itoa(n) + " probe positions per pass (0-" + itoa(n-1) + ")"}
	case pos.Next != 0 && pos.Next%c.Shards != c.Shard && pos.Senders.N == 0:
		return &PositionError{Field: "next", Value: pos.Next, Why: "positions of shard " + itoa(c.Shard) + " of " + itoa(c.Shards)}
	}
	return c.validSenders(pos, n)
}

// PositionError is a resume position the scan cannot have written.
type PositionError struct {
	Field string
	Value uint64
	Why   string
}

func (e *PositionError) Error() string {
	return "position " + e.Field + " " + itoa(e.Value) + " is not one of this scan's: it has " + e.Why
}

func passRange(retries int) string {
	return "passes 0-" + itoa(uint64(retries)) + " (--retries " + itoa(uint64(retries)) + ")"
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// Position is where a scan stands: pass (0 = first send, then retries) and
// the next permutation position to send in it.
type Position struct {
	Pass uint64 `json:"pass"`
	Next uint64 `json:"next"`
	// Senders: with --senders N > 1, each sender's next position.
	Senders SenderNext `json:"senders,omitzero"`
}
