package scan

import (
	"context"
	"net/netip"

	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/transmit"
)

// probeRef is one probe of the walk: its target, and the source port the
// raw TCP scan sends it from.
type probeRef struct {
	addr  netip.Addr
	port  targets.Port
	sport uint16
}

// walkProbes walks the permutation pass after pass at cfg.Rate and hands
// each due batch (at most BatchSize probes) to send, which returns how many
// it sent. It returns where it stopped: the end, ctx done, or send's error,
// exactly at the first probe not sent.
func walkProbes(ctx context.Context, cfg Config, progress *Progress, batchMin, batchMax int, send func(batch []probeRef) (int, error)) (Position, error) {
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	limiter := NewRateLimiter(cfg.Rate)
	limiter.MinBatch = batchMin
	batch := make([]probeRef, batchMax)
	pos := cfg.Resume
	progress.publishPosition(pos, n)
	for ; pos.Pass <= uint64(cfg.Retries); pos.Pass, pos.Next = pos.Pass+1, 0 {
		perm := cfg.passOrder(pos.Pass)
		if pos.Next < cfg.Shard {
			pos.Next = cfg.Shard
		}
		for pos.Next < n {
			k := limiter.Next(ctx, batchMax)
			if k == 0 {
				return pos, ctx.Err()
			}
			first, filled := pos.Next, 0
			for ; filled < k && pos.Next < n; pos.Next += cfg.Shards {
				addr, port, sport := cfg.probeAt(perm, pos)
				batch[filled] = probeRef{addr, port, sport}
				filled++
			}
			sent, err := send(batch[:filled])
			progress.Sent.Add(uint64(sent))
			if err != nil {
				pos.Next = first + uint64(sent)*cfg.Shards
				progress.publishPosition(pos, n)
				return pos, err
			}
			progress.publishPosition(pos, n)
		}
	}
	progress.publishPosition(pos, n)
	return pos, nil
}

// sendProbes sends the walk's probes as raw frames, a batch at a time.
func sendProbes(ctx context.Context, cfg Config, tx transmit.Sender, progress *Progress) (Position, error) {
	templates := newProbeTemplates(cfg)
	lens := make([]int, tx.Batch())
	batches := 0
	return walkProbes(ctx, cfg, progress, cfg.minBatch(tx.Batch()), tx.Batch(), func(batch []probeRef) (int, error) {
		for i, p := range batch {
			lens[i] = templates.fill(tx.Buffer(i), &cfg, p.addr, p.port, p.sport)
		}
		err := tx.Send(ctx, lens[:len(batch)])
		if batches++; batches%64 == 0 || err != nil {
			_, errs := tx.Counts()
			progress.TxErrors.Store(errs)
		}
		if err != nil {
			return 0, err
		}
		return len(batch), nil
	})
}

// EachProbe calls fn for every probe the scan would send, in order, with
// the source port it is sent from (0 for echo).
func EachProbe(cfg Config, fn func(addr netip.Addr, port targets.Port, sport uint16) error) error {
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	for pass := uint64(0); pass < cfg.passes(); pass++ {
		perm := cfg.passOrder(pass)
		for p := cfg.Shard; p < n; p += cfg.Shards {
			addr, port, sport := cfg.probeAt(perm, Position{Pass: pass, Next: p})
			switch {
			case cfg.Connect:
				sport = 0 // the kernel picks it
			case port.Proto == targets.ProtoUDP:
				sport = probe.UDPSourcePort(cfg.udpCookie(addr, port.Num), cfg.SportLo, cfg.SportHi)
			case port.Proto == targets.ProtoICMP:
				sport = 0
			}
			if err := fn(addr, port, sport); err != nil {
				return err
			}
		}
	}
	return nil
}
