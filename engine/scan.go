package engine

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

// Reply kinds, as enum reply_kind in bpf/scan.c.
const (
	replyOpen   = 1
	replyClosed = 2
)

// ScanConfig is one SYN scan.
type ScanConfig struct {
	Targets          RangeSet
	Ports            []uint16
	Rate             float64 // probes per second
	Path             Path
	SportLo, SportHi uint16
	Retries          int
	Wait             time.Duration // cooldown after the last probe
	Seed             uint64
	Shards, Shard    uint64 // this run sends positions p with p % Shards == Shard
	Resume           Position
	XDPMode          loader.Mode
	// RxMode is "xdp" (validated and consumed in the kernel) or "pcap"
	// (libpcap, validated in Go: the baseline).
	RxMode string
	// Reset answers open ports' SYN-ACKs with a RST from XDP (--reset).
	Reset bool
	Key   CookieKey
}

// Position is where a scan stands: pass (0 = first send, then retries) and
// the next permutation position to send in it.
type Position struct {
	Pass uint64 `json:"pass"`
	Next uint64 `json:"next"`
}

// Result is one (address, port) found.
type Result struct {
	Addr  netip.Addr
	Port  uint16
	Proto string // "tcp"
	State string // "open" or "closed"
	TTL   uint8
	Time  time.Time
}

// Progress is read by the status line while the scan runs.
type Progress struct {
	Sent, Total, Replies, Open, Closed atomic.Uint64
	TxErrors                           atomic.Uint64 // mirrors Transmitter.Errs for the status line
	counters                           func() (loader.Counters, error)
}

// Counters reads the XDP program's counters (duplicates, losses).
func (p *Progress) Counters() loader.Counters {
	if p.counters == nil {
		return loader.Counters{}
	}
	c, _ := p.counters()
	return c
}

// Stats are a scan's final figures (the --stats-json object).
type Stats struct {
	ProbesSent  uint64  `json:"probes_sent"`
	ProbesTotal uint64  `json:"probes_total"`
	SendPPS     float64 `json:"send_pps"`
	Replies     uint64  `json:"replies"`
	Open        uint64  `json:"open"`
	Closed      uint64  `json:"closed"`
	// Filtered is the pairs probed that never answered (not listed).
	Filtered      uint64  `json:"filtered"`
	Duplicates    uint64  `json:"duplicates"`
	InvalidCookie uint64  `json:"invalid_cookie"`
	RingLost      uint64  `json:"ring_lost"`
	TxErrors      uint64  `json:"tx_errors"`
	ElapsedS      float64 `json:"elapsed_s"`
	SendS         float64 `json:"send_s"`
	RxMode        string  `json:"rx_mode"`
	XDPMode       string  `json:"xdp_mode"`
	Interface     string  `json:"interface"`
	Interrupted   bool    `json:"interrupted"`
	// Resume is where an interrupted scan stopped sending.
	Resume *Position `json:"resume,omitempty"`
}

// TotalProbes is how many probes this shard sends over all passes.
func (c ScanConfig) TotalProbes() uint64 {
	n := c.Targets.Len() * uint64(len(c.Ports))
	per := n / c.Shards
	if c.Shard < n%c.Shards {
		per++
	}
	return per * uint64(c.Retries+1)
}

// RunScan runs a SYN scan. emit is called from one goroutine, in arrival
// order, for every (address, port) that answered. When ctx is cancelled the
// scan stops sending, still listens for the cooldown (stop, if not nil,
// cuts that short), and returns the figures with Interrupted set.
func RunScan(ctx, stop context.Context, cfg ScanConfig, progress *Progress, emit func(Result)) (Stats, error) {
	if stop == nil {
		stop = context.Background()
	}
	if cfg.RxMode == "" {
		cfg.RxMode = "xdp"
	}
	st := Stats{RxMode: cfg.RxMode, Interface: cfg.Path.Iface}
	tx, err := NewTransmitter(cfg.Path.Iface)
	if err != nil {
		return st, err
	}
	defer tx.Close()

	rxCtx, stopRx := context.WithCancel(context.Background())
	defer stopRx()
	var rxErr error
	var wg sync.WaitGroup
	var finish func(*Stats) error
	if cfg.RxMode == "pcap" {
		rx, err := openPcapRx(cfg)
		if err != nil {
			return st, err
		}
		defer rx.close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rxErr = rx.run(rxCtx, progress, emit)
		}()
		finish = func(st *Stats) error {
			st.Duplicates, st.InvalidCookie, st.RingLost = rx.duplicates, rx.badCookie, rx.kernelDrops+rx.ifaceDrops
			return nil
		}
	} else {
		prog, consumer, att, err := startXDP(cfg, progress)
		if err != nil {
			return st, err
		}
		defer prog.Close()
		defer att.Close()
		defer consumer.Close()
		st.XDPMode = string(att.Mode)
		clock := newMonoClock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rxErr = consumer.Run(rxCtx, func(batch []bpf.ScanScanEvent) { handleEvents(batch, clock, progress, emit) })
		}()
		finish = func(st *Stats) error {
			c, err := prog.Counters()
			st.Duplicates, st.InvalidCookie, st.RingLost = c.Duplicates, c.BadCookie, c.RingLost
			return err
		}
	}

	progress.Total.Store(cfg.TotalProbes())
	start := time.Now()
	pos, sendErr := sendProbes(ctx, cfg, tx, progress)
	st.SendS = time.Since(start).Seconds()
	if ctx.Err() != nil {
		st.Interrupted = true
		st.Resume = &pos
	}

	// Cooldown: replies to the last probes are still on their way.
	select {
	case <-time.After(cfg.Wait):
	case <-stop.Done():
	}
	stopRx()
	wg.Wait()

	if err := finish(&st); err != nil {
		return st, err
	}
	st.ProbesSent = tx.Sent.Load()
	st.ProbesTotal = progress.Total.Load()
	if st.SendS > 0 {
		st.SendPPS = float64(st.ProbesSent) / st.SendS
	}
	st.Replies = progress.Replies.Load()
	st.Open = progress.Open.Load()
	st.Closed = progress.Closed.Load()
	if !st.Interrupted && cfg.Resume == (Position{}) {
		pairs := st.ProbesTotal / uint64(cfg.Retries+1)
		st.Filtered = pairs - min(pairs, st.Open+st.Closed)
	}
	st.TxErrors = tx.Errs.Load()
	st.ElapsedS = time.Since(start).Seconds()
	if sendErr != nil && ctx.Err() == nil {
		return st, sendErr
	}
	if rxErr != nil {
		return st, rxErr
	}
	return st, nil
}

// startXDP loads the scan program, attaches it and opens its ring.
func startXDP(cfg ScanConfig, progress *Progress) (*loader.Scan, *ringbuf.Consumer[bpf.ScanScanEvent], *loader.Attachment, error) {
	prog, err := loader.LoadScan(loader.ScanConfig{
		SourceIPv4: cfg.Path.Src, SourcePortLo: cfg.SportLo, SourcePortHi: cfg.SportHi,
		CookieKey: cfg.Key, RingBytes: 1 << 24, RingWakeupBytes: 1 << 16, ResetOpen: cfg.Reset,
		DedupEntries: uint32(min(max(cfg.Targets.Len()*uint64(len(cfg.Ports)), 1024), 1<<20)),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	att, err := loader.Attach(prog.Program(), cfg.Path.Iface, cfg.XDPMode)
	if err != nil {
		prog.Close()
		return nil, nil, nil, err
	}
	consumer, err := ringbuf.New[bpf.ScanScanEvent](prog.Events(), ringbuf.Options{BatchSize: 512})
	if err != nil {
		att.Close()
		prog.Close()
		return nil, nil, nil, err
	}
	progress.counters = prog.Counters
	return prog, consumer, att, nil
}

// handleEvents turns ring events into results.
func handleEvents(batch []bpf.ScanScanEvent, clock monoClock, progress *Progress, emit func(Result)) {
	for i := range batch {
		e := &batch[i]
		r := Result{Addr: netip.AddrFrom4([4]byte(e.Addr[:4])), Port: e.Port, Proto: "tcp", TTL: e.Ttl, Time: clock.wall(e.TsNs)}
		switch e.Kind {
		case replyOpen:
			r.State = "open"
			progress.Open.Add(1)
		case replyClosed:
			r.State = "closed"
			progress.Closed.Add(1)
		default:
			continue
		}
		progress.Replies.Add(1)
		emit(r)
	}
}

// sendProbes walks the permutation, pass after pass, and returns where it
// stopped.
func sendProbes(ctx context.Context, cfg ScanConfig, tx *Transmitter, progress *Progress) (Position, error) {
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	templates := make([]*SYNTemplate, int(cfg.SportHi-cfg.SportLo)+1)
	for i := range templates {
		templates[i] = NewSYNTemplate(cfg.Path.SrcMAC, cfg.Path.RouterMAC, cfg.Path.Src, cfg.SportLo+uint16(i), cfg.Key)
	}
	limiter := NewRateLimiter(cfg.Rate)
	var lens [BatchSize]int
	pos := cfg.Resume
	for ; pos.Pass <= uint64(cfg.Retries); pos.Pass, pos.Next = pos.Pass+1, 0 {
		perm := cfg.passOrder(pos.Pass)
		if pos.Next < cfg.Shard {
			pos.Next = cfg.Shard
		}
		for pos.Next < n {
			k := limiter.Next(ctx, BatchSize)
			if k == 0 {
				return pos, ctx.Err()
			}
			filled := 0
			for ; filled < k && pos.Next < n; pos.Next += cfg.Shards {
				addr, port, sport := cfg.probeAt(perm, pos)
				lens[filled] = templates[sport-cfg.SportLo].Fill(tx.Buffer(filled), addr, port)
				filled++
			}
			err := tx.Send(ctx, lens[:filled])
			progress.TxErrors.Store(tx.Errs.Load())
			if err != nil {
				return pos, err
			}
			progress.Sent.Add(uint64(filled))
		}
	}
	return pos, nil
}

// monoClock converts bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall-clock time.
type monoClock struct{ offset time.Duration }

func newMonoClock() monoClock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return monoClock{offset: time.Duration(time.Now().UnixNano() - ts.Nano())}
}

func (m monoClock) wall(ktime uint64) time.Time {
	return time.Unix(0, int64(ktime)+int64(m.offset))
}

// Validate checks a configuration before anything is loaded or sent.
func (c ScanConfig) Validate() error {
	switch {
	case c.Targets.Len() == 0:
		return fmt.Errorf("no targets")
	case len(c.Ports) == 0:
		return fmt.Errorf("no ports")
	case c.Rate <= 0:
		return fmt.Errorf("--rate must be positive")
	case c.Shards == 0 || c.Shard >= c.Shards:
		return fmt.Errorf("--shard %d must be below --shards %d", c.Shard, c.Shards)
	case c.SportLo > c.SportHi:
		return fmt.Errorf("source port range %d-%d is reversed", c.SportLo, c.SportHi)
	case c.Retries < 0:
		return fmt.Errorf("--retries must be >= 0")
	}
	return nil
}

// passOrder is the probe order of one pass. Each pass has its own, so a
// retry does not hit a target at the same moment of its rate limit window.
func (c ScanConfig) passOrder(pass uint64) Permutation {
	return NewPermutation(c.Targets.Len()*uint64(len(c.Ports)), c.Seed+pass*0x632be59bd9b4e019)
}

// probeAt is the probe at a position of a pass: the one mapping from
// positions to (address, port, source port), shared by the sender and
// --dry-run.
func (c ScanConfig) probeAt(perm Permutation, pos Position) (addr uint32, port, sport uint16) {
	nports := uint64(len(c.Ports))
	x := perm.At(pos.Next)
	nsports := uint64(c.SportHi-c.SportLo) + 1
	return c.Targets.At(x / nports), c.Ports[x%nports], c.SportLo + uint16((pos.Next/c.Shards+pos.Pass)%nsports)
}

// EachProbe calls fn for every probe the scan would send, in order.
func EachProbe(cfg ScanConfig, fn func(addr netip.Addr, port, sport uint16) error) error {
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	for pass := uint64(0); pass <= uint64(cfg.Retries); pass++ {
		perm := cfg.passOrder(pass)
		for p := cfg.Shard; p < n; p += cfg.Shards {
			addr, port, sport := cfg.probeAt(perm, Position{Pass: pass, Next: p})
			if err := fn(U32ToAddr(addr), port, sport); err != nil {
				return err
			}
		}
	}
	return nil
}
