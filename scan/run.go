package scan

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/ringbuf"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/transmit"
)

// Run runs a scan. emit is called from one goroutine, in arrival
// order, for every (address, port) that answered. When ctx is cancelled the
// scan stops sending, still listens for the cooldown (stop, if not nil,
// cuts that short), and returns the figures with Interrupted set.
func Run(ctx, stop context.Context, cfg Config, progress *Progress, emit func(Result)) (Stats, error) {
	if stop == nil {
		stop = context.Background()
	}
	if cfg.Connect {
		return runConnect(ctx, stop, cfg, progress, emit)
	}
	if cfg.RxMode == "" {
		cfg.RxMode = loader.RxXDP
	}
	st := Stats{RxMode: cfg.RxMode, TxMode: cfg.txMode(), Interface: cfg.iface(), Senders: cfg.senders()}
	var tx transmit.Sender
	var newTx func() (transmit.Sender, error) // a further sender's (--senders)
	var extra []transmit.Sender
	defer func() {
		for _, t := range extra {
			t.Close()
		}
	}()
	if cfg.txMode() == transmit.ModeSocket {
		newTx = func() (transmit.Sender, error) { return transmit.NewSocket(cfg.iface()) }
		t, err := transmit.NewSocket(cfg.iface())
		if err != nil {
			return st, err
		}
		defer t.Close()
		tx = t
	}

	rxCtx, stopRx := context.WithCancel(context.Background())
	defer stopRx()
	var rxErr error
	var wg sync.WaitGroup
	var finish func(*Stats) error
	var rv *resolver // the XDP path's
	if cfg.RxMode == loader.RxPcap {
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
			st.setDuplicates(0, rx.seen.Duplicates)
			st.InvalidCookie, st.RingLost = rx.badCookie, rx.kernelDrops+rx.ifaceDrops
			return nil
		}
	} else {
		prog, consumer, att, err := startXDP(cfg, progress, &st)
		if err != nil {
			return st, err
		}
		defer prog.Close()
		defer att.Close()
		defer consumer.Close()
		att.describe(&st)
		if cfg.txMode() == transmit.ModeXDP {
			t, err := transmit.NewXDP(cfg.iface(), prog)
			if err != nil {
				return st, err
			}
			defer t.Close()
			tx = t
			k := 0
			newTx = func() (transmit.Sender, error) { k++; return newXDPSender(cfg, prog, k) }
		}
		clock := clock.NewMono()
		seen := newClassSeen(cfg.Targets, cfg.Ports)
		rv = newResolver(probe.SourcePortBits(cfg.SportLo, cfg.SportHi), progress, emit)
		rv.keyByIndex(seen.open)
		rv.requireConfirm = cfg.Confirm
		wg.Add(1)
		go func() {
			defer wg.Done()
			rxErr = consumer.Run(rxCtx, func(batch []bpf.ScanScanEvent) { handleEvents(batch, clock, seen, rv) })
		}()
		finish = func(st *Stats) error {
			// The receiver has stopped: the held answers are final.
			rv.flush()
			rv.finish(st)
			c, err := prog.Counters()
			att.resetNotice(cfg, c, progress.Open.Load())
			st.setDuplicates(c.Duplicates, seen.duplicates())
			st.InvalidCookie, st.RingLost = c.BadCookie, c.RingLost
			if err == nil {
				st.RxPerCPU, st.RingLostPerCPU, err = perCPUStats(prog)
			}
			return err
		}
	}

	if cfg.senders() > 1 {
		var err error
		if extra, err = openExtraSenders(cfg, newTx); err != nil {
			stopRx()
			wg.Wait()
			return st, err
		}
	}
	if cfg.Ready != nil {
		if err := cfg.Ready(); err != nil {
			stopRx()
			wg.Wait()
			return st, err
		}
	}
	progress.Total.Store(cfg.TotalProbes())
	start := time.Now()
	pos, sendErr := sendAll(ctx, cfg, tx, extra, progress)
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
	if cfg.Confirm && rv != nil && stop.Err() == nil {
		if held := rv.heldUDP(); len(held) > 0 {
			if err := sendConfirms(stop, cfg, tx, held); err != nil && sendErr == nil && stop.Err() == nil {
				sendErr = err
			}
			select {
			case <-time.After(cfg.Wait):
			case <-stop.Done():
			}
		}
	}
	stopRx()
	wg.Wait()

	if err := finish(&st); err != nil {
		return st, err
	}
	st.ProbesSent, st.TxErrors = tx.Counts()
	for _, t := range extra {
		sent, errs := t.Counts()
		st.ProbesSent, st.TxErrors = st.ProbesSent+sent, st.TxErrors+errs
	}
	st.TxResent, st.TxRefused = resentCounts(append([]transmit.Sender{tx}, extra...))
	if r, ok := tx.(interface{ RelayCPU() time.Duration }); ok {
		st.TxRelayCPUS = r.RelayCPU().Seconds()
	}
	cfg.finishCounts(&st, progress)
	st.ElapsedS = time.Since(start).Seconds()
	if sendErr != nil && ctx.Err() == nil {
		return st, sendErr
	}
	if rxErr != nil {
		return st, rxErr
	}
	return st, nil
}

// loaderConfig is the scan program's configuration.
func (cfg Config) loaderConfig() loader.ScanConfig {
	return loader.ScanConfig{
		SourceIPv4: cfg.Path.Src, SourceIPv6: cfg.Path6.Src, SourcePortLo: cfg.SportLo, SourcePortHi: cfg.SportHi,
		CookieKey: cfg.Key, RingBytes: loader.RingBytes, RingWakeupBytes: loader.RingWakeupBytes, ResetOpen: cfg.Reset, UDPEchoes: probe.UDPEchoes(),
		UDPConfirm:   cfg.Confirm,
		SendSlots:    cfg.sendSlots(),
		SendSenders:  uint32(cfg.senders()),
		SendRelay:    cfg.sendRelay(),
		DedupEntries: cfg.dedupEntries(),
		DedupPerCPU:  cfg.Reset,
	}
}

// dedupEntries sizes the kernel's table of reported pairs
// (bpf/include/dedup.h), the fast filter in front of the exact sets in
// user space (seen.go), which refuse whatever it lets through.
//
// Its one cache line per reply is a miss once the table outgrows the
// caches: under BPF_PROG_RUN a /16 × 4 scan's 8 MiB table cost 100-160 ns
// a reply more than a 64 KiB one, and a fully answered `--tx xdp
// --senders 2` scan sent 1.37-1.54M probes/s with the small table against
// 1.22-1.35M (docs/bench/cores.md, session 15). What a big table buys is
// a pair still there when the target retransmits its SYN-ACK, 1 s and
// more later. With --reset the target's stack takes our RST and never
// retransmits, so only the duplicates of the last few milliseconds are
// left to catch, and resetDedupPairs hold those: masscan's own table is a
// small cache of recent pairs for the same reason. That table is also one
// per CPU (loader.ScanConfig.DedupPerCPU), so that two CPUs receiving
// replies do not pull its lines from each other: 1.43-1.61M probes/s
// against 1.31-1.45M with one shared table, 9 alternated rounds of the
// same scan with two senders (per-round ratio median 1.08). Without
// --reset every open port retransmits, and the table is sized for every
// pair of the scan (up to 2^20) and shared, as before: one per CPU would
// take up to 64 MiB per CPU.
func (cfg Config) dedupEntries() uint32 {
	pairs := uint32(min(max(cfg.Targets.Len()*uint64(len(cfg.Ports)), 1024), 1<<20))
	if cfg.Reset {
		return min(pairs, resetDedupPairs)
	}
	return pairs
}

// resetDedupPairs is the kernel table's size with --reset: 2,048 pairs,
// 1,024 buckets of 8, 64 KiB.
const resetDedupPairs = 2048

// startXDP loads the scan program, attaches it (at TC ingress beside an
// XDP program already there: beside.go) and opens its ring.
func startXDP(cfg Config, progress *Progress, st *Stats) (*loader.Scan, eventReader, *rxHook, error) {
	lc := cfg.loaderConfig()
	plan, choice, err := cfg.ringPlan()
	if err != nil {
		return nil, nil, nil, err
	}
	if plan.Rings() > 0 {
		lc.Rings = plan
		lc.RingBytes, lc.RingWakeupBytes = sharedRingBeside, plan.Bytes/4
	}
	st.Rings = &choice
	prog, err := loader.LoadScan(lc)
	if err != nil {
		return nil, nil, nil, err
	}
	att, err := attachRx(cfg, prog)
	if err != nil {
		prog.Close()
		return nil, nil, nil, err
	}
	consumer, err := newEventReader(prog)
	if err != nil {
		att.Close()
		prog.Close()
		return nil, nil, nil, err
	}
	progress.SetCounters(prog.Counters)
	progress.SetProgram(att.program(prog))
	return prog, consumer, att, nil
}

// eventReader hands the scan program's events to a handler in batches.
type eventReader interface {
	Run(ctx context.Context, handle func(batch []bpf.ScanScanEvent)) error
	Close() error
}

// newEventReader reads prog's one shared ring, or all its rings when it
// has per-CPU ones (loader.ScanConfig.Rings): events need no order
// between rings, each is a pair's own answer.
func newEventReader(prog *loader.Scan) (eventReader, error) {
	opts := ringbuf.Options{BatchSize: 512}
	if len(prog.CPURings) == 0 {
		return ringbuf.New[bpf.ScanScanEvent](prog.Events(), opts)
	}
	m, err := ringbuf.NewMulti[bpf.ScanScanEvent](prog.Rings(), opts)
	if err != nil {
		return nil, err
	}
	return &multiReader{m: m, batch: make([]bpf.ScanScanEvent, 0, opts.BatchSize)}, nil
}

// multiReader batches the events of several rings as ringbuf.Consumer
// batches one ring's: copied out, up to a batch, handed on at least once
// a pass over the rings.
type multiReader struct {
	m     *ringbuf.Multi[bpf.ScanScanEvent]
	batch []bpf.ScanScanEvent
}

func (r *multiReader) Run(ctx context.Context, handle func(batch []bpf.ScanScanEvent)) error {
	flush := func() {
		if len(r.batch) > 0 {
			handle(r.batch)
			r.batch = r.batch[:0]
		}
	}
	err := r.m.RunRecords(ctx, func(_ int, e *bpf.ScanScanEvent, _ []byte) {
		r.batch = append(r.batch, *e)
		if len(r.batch) == cap(r.batch) {
			flush()
		}
	}, func(int64, []bool) { flush() })
	flush()
	return err
}

func (r *multiReader) Close() error { return r.m.Close() }

// handleEvents turns ring events into results and hands them to the
// resolver with the cookie bits each proves. An answer passes the exact
// set of its pair and class once (the kernel's table is lossy); answers to
// --confirm's retries go to the resolver as they are. The resolver's lock
// is taken once a batch, and a pair's index found once (the exact set's
// is the resolver's): BenchmarkHandleEvents went from 67 to 47 ns an
// event (half of them duplicates), out of the 285-375 ns an answer costs
// the reply goroutine with its output at 1.5M probes/s (docs/bench/cores.md,
// session 16).
func handleEvents(batch []bpf.ScanScanEvent, clock clock.Mono, seen *classSeen, rv *resolver) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for i := range batch {
		e := &batch[i]
		addr := eventAddr(e.Family, e.Addr)
		if e.Kind < probe.ReplyOpen || e.Kind > probe.ReplyAlive {
			continue
		}
		var ref pairRef
		known := false
		if e.Confirm == 0 {
			ok, idx, indexed := seen.admit(addr, e.Proto, e.Port, e.Kind == probe.ReplyOpen)
			if !ok {
				continue
			}
			ref, known = pairRef{idx: idx, indexed: indexed && rv.pairs != nil}, true
		}
		r := Result{Addr: addr, Port: e.Port, Proto: targets.ProtoName(e.Proto), TTL: e.Ttl, Time: clock.Wall(e.TsNs)}
		if from := eventAddr(e.Family, e.From); from != r.Addr {
			r.From = from
		}
		switch e.Kind {
		case probe.ReplyOpen:
			r.State, r.Reason = StateOpen, "syn-ack"
			if e.Proto == targets.ProtoUDP {
				r.Reason = "udp-response"
			}
		case probe.ReplyClosed:
			r.State, r.Reason = StateClosed, "reset"
			if e.IcmpType != 0 {
				r.Reason = probe.ICMPReason(e.Family, e.IcmpType, e.IcmpCode)
			}
		case probe.ReplyFiltered:
			r.State, r.Reason = StateFiltered, probe.ICMPReason(e.Family, e.IcmpType, e.IcmpCode)
		case probe.ReplyAlive:
			r.State, r.Reason = StateUp, "echo-reply"
		default:
			continue
		}
		quoted := e.IcmpType != 0 && e.Kind != probe.ReplyAlive
		bits := probe.AnswerBits(e.Proto, quoted, e.Family == 4, e.Port, rv.sportBits)
		ref.key = pairKey{r.Addr, r.Port, r.Proto}
		if !known {
			ref = rv.ref(ref.key)
		}
		if e.Confirm != 0 {
			rv.addConfirmLocked(ref, r, bits)
			continue
		}
		rv.addLocked(ref, r, bits)
	}
}

func eventAddr(family uint8, a [16]byte) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(a)
}

// sendConfirms sends the confirming retry of each held UDP result
// (--confirm): the same request under a fresh cookie. They are few (the
// weak results), sent in transmitter batches without pacing.
func sendConfirms(ctx context.Context, cfg Config, tx transmit.Sender, held []Result) error {
	templates := newProbeTemplates(cfg)
	lens := make([]int, tx.Batch())
	for len(held) > 0 {
		n := min(len(held), tx.Batch())
		for i, r := range held[:n] {
			lens[i] = templates.fillConfirm(tx.Buffer(i), r.Addr, r.Port)
		}
		if err := tx.Send(ctx, lens[:n]); err != nil {
			return err
		}
		held = held[n:]
	}
	return nil
}
