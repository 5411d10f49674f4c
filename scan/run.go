package scan

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/ringbuf"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/transmit"
)

// Config is one scan: TCP SYN, UDP and ICMP echo probes, in any mix.
type Config struct {
	Targets          targets.RangeSet
	Ports            []targets.Port
	Rate             float64    // probes per second
	Path             route.Path // how IPv4 probes leave; zero without IPv4 targets
	Path6            route.Path // how IPv6 probes leave; zero without IPv6 targets
	SportLo, SportHi uint16
	Retries          int
	Wait             time.Duration // cooldown after the last probe
	Seed             uint64
	Shards, Shard    uint64 // this run sends positions p with p % Shards == Shard
	Resume           Position
	XDPMode          loader.Mode
	// RxMode is loader.RxXDP (validated and consumed in the kernel, the
	// default) or loader.RxPcap (libpcap, validated in Go: the baseline).
	RxMode loader.RxMode
	// Tx is how raw probes leave: transmit.ModeSocket (AF_PACKET sendmmsg,
	// the default) or transmit.ModeXDP (from the kernel, live frames).
	Tx transmit.Mode
	// TxRelay, with Tx "xdp", hands the frames to a kthread on CPU
	// TxRelayCPU, which transmits them (loader.SendRelay): the sending
	// thread then only builds and queues frames.
	TxRelay    bool
	TxRelayCPU int
	// Reset answers open ports' SYN-ACKs with a RST from XDP (--reset).
	Reset bool
	Key   probe.CookieKey
	// Connect probes with the kernel's own sockets instead of raw frames
	// and XDP (--connect): no privilege needed. See connect.go.
	Connect        bool
	ConnectTimeout time.Duration // per probe; 0 means 1s
	Workers        int           // probes in flight at most; 0: from RLIMIT_NOFILE
	Notice         ConnectNotice // told once of descriptor or port exhaustion
	// Ready, if set, is called once setup is over (sockets open, programs
	// loaded and attached, rings open), before the first probe: the place
	// to open output files and drop privileges. An error ends the scan
	// before anything is sent.
	Ready func() error
}

// Position is where a scan stands: pass (0 = first send, then retries) and
// the next permutation position to send in it.
type Position struct {
	Pass uint64 `json:"pass"`
	Next uint64 `json:"next"`
}

// State is what a reply proved: open (SYN-ACK, a UDP reply), closed (RST,
// ICMP port unreachable), filtered (another ICMP error: see
// Result.Reason) or up (echo reply). The strings are the output's words.
type State string

const (
	StateOpen     State = "open"
	StateClosed   State = "closed"
	StateFiltered State = "filtered"
	StateUp       State = "up"
)

// RxConnect is Stats.RxMode of a connect scan: the kernel's own sockets.
const RxConnect loader.RxMode = "connect"

// Result is one (address, port) that answered.
type Result struct {
	Addr  netip.Addr
	Port  uint16 // 0 for ICMP echo
	Proto string // "tcp", "udp" or "icmp"
	State State
	// Reason says what proved State, in nmap's words: syn-ack, reset,
	// udp-response, port-unreach, echo-reply, host-unreach, admin-prohibited...
	Reason string
	// From is who sent the reply when it is not Addr (a router's ICMP error).
	From netip.Addr
	TTL  uint8
	Time time.Time
}

// Progress is read by the status line while the scan runs.
type Progress struct {
	Sent, Total, Replies, Open, Closed, Filtered, Up atomic.Uint64
	UDPAnswered                                      atomic.Uint64 // UDP pairs with any answer
	TxErrors                                         atomic.Uint64 // mirrors Transmitter.Errs for the status line
	counters                                         func() (loader.Counters, error)
	position                                         positionCell // see Position
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
	// FilteredICMP is the pairs an ICMP error (other than port unreachable
	// to a UDP probe) called filtered: listed, with the reason.
	FilteredICMP uint64 `json:"filtered_icmp"`
	// Up is the hosts that answered an echo request.
	Up uint64 `json:"up"`
	// Filtered is the pairs probed that never answered (not listed).
	Filtered uint64 `json:"filtered"`
	// UDPNoReply is the UDP pairs among them: open|filtered in nmap's
	// words (a service that ignored the payload, a firewall, or a target's
	// ICMP rate limit). Unsharded scans only.
	UDPNoReply    uint64        `json:"udp_no_reply"`
	Duplicates    uint64        `json:"duplicates"`
	InvalidCookie uint64        `json:"invalid_cookie"`
	RingLost      uint64        `json:"ring_lost"`
	TxErrors      uint64        `json:"tx_errors"`
	ElapsedS      float64       `json:"elapsed_s"`
	SendS         float64       `json:"send_s"`
	RxMode        loader.RxMode `json:"rx_mode"`
	TxMode        transmit.Mode `json:"tx_mode,omitempty"`
	// TxRelayCPUS is the CPU seconds of the --tx-relay-cpu kernel thread:
	// the transmit, and on veth the target's receive path, which runs in
	// the transmitting thread's softirq. Not part of this process's time.
	TxRelayCPUS float64 `json:"tx_relay_cpu_s,omitempty"`
	XDPMode     string  `json:"xdp_mode"`
	Interface   string  `json:"interface"`
	Interrupted bool    `json:"interrupted"`
	// Resume is where an interrupted scan stopped sending.
	Resume *Position `json:"resume,omitempty"`
	// Connect holds the connect scan's own figures.
	Connect *ConnectStats `json:"connect,omitempty"`
}

// TotalProbes is how many probes this shard sends over all passes.
func (c Config) TotalProbes() uint64 {
	n := c.Targets.Len() * uint64(len(c.Ports))
	per := n / c.Shards
	if c.Shard < n%c.Shards {
		per++
	}
	return per * c.passes()
}

// passes is how many times the walk visits every pair: a raw scan sends
// every probe again in each --retries pass; a connect scan walks once and
// re-probes only the pairs that timed out (connect_timing.go).
func (c Config) passes() uint64 {
	if c.Connect {
		return 1
	}
	return uint64(c.Retries + 1)
}

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
	st := Stats{RxMode: cfg.RxMode, TxMode: cfg.txMode(), Interface: cfg.iface()}
	var tx transmit.Sender
	if cfg.txMode() == transmit.ModeSocket {
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
		if cfg.txMode() == transmit.ModeXDP {
			t, err := transmit.NewXDP(cfg.iface(), prog)
			if err != nil {
				return st, err
			}
			defer t.Close()
			tx = t
		}
		clock := clock.NewMono()
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

	if cfg.Ready != nil {
		if err := cfg.Ready(); err != nil {
			stopRx()
			wg.Wait()
			return st, err
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
	st.ProbesSent, st.TxErrors = tx.Counts()
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

// startXDP loads the scan program, attaches it and opens its ring.
func startXDP(cfg Config, progress *Progress) (*loader.Scan, *ringbuf.Consumer[bpf.ScanScanEvent], *loader.Attachment, error) {
	prog, err := loader.LoadScan(loader.ScanConfig{
		SourceIPv4: cfg.Path.Src, SourceIPv6: cfg.Path6.Src, SourcePortLo: cfg.SportLo, SourcePortHi: cfg.SportHi,
		CookieKey: cfg.Key, RingBytes: loader.RingBytes, RingWakeupBytes: loader.RingWakeupBytes, ResetOpen: cfg.Reset, UDPEchoes: probe.UDPEchoes(),
		SendSlots:    cfg.sendSlots(),
		SendRelay:    cfg.sendRelay(),
		DedupEntries: uint32(min(max(cfg.Targets.Len()*uint64(len(cfg.Ports)), 1024), 1<<20)),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	att, err := loader.Attach(prog.Program(), cfg.iface(), cfg.XDPMode)
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
func handleEvents(batch []bpf.ScanScanEvent, clock clock.Mono, progress *Progress, emit func(Result)) {
	for i := range batch {
		e := &batch[i]
		r := Result{Addr: eventAddr(e.Family, e.Addr), Port: e.Port, Proto: targets.ProtoName(e.Proto), TTL: e.Ttl, Time: clock.Wall(e.TsNs)}
		if from := eventAddr(e.Family, e.From); from != r.Addr {
			r.From = from
		}
		switch e.Kind {
		case probe.ReplyOpen:
			r.State, r.Reason = StateOpen, "syn-ack"
			if e.Proto == targets.ProtoUDP {
				r.Reason = "udp-response"
			}
			progress.Open.Add(1)
		case probe.ReplyClosed:
			r.State, r.Reason = StateClosed, "reset"
			if e.IcmpType != 0 {
				r.Reason = probe.ICMPReason(e.Family, e.IcmpType, e.IcmpCode)
			}
			progress.Closed.Add(1)
		case probe.ReplyFiltered:
			r.State, r.Reason = StateFiltered, probe.ICMPReason(e.Family, e.IcmpType, e.IcmpCode)
			progress.Filtered.Add(1)
		case probe.ReplyAlive:
			r.State, r.Reason = StateUp, "echo-reply"
			progress.Up.Add(1)
		default:
			continue
		}
		progress.Replies.Add(1)
		if e.Proto == targets.ProtoUDP {
			progress.UDPAnswered.Add(1)
		}
		emit(r)
	}
}

func (c Config) countPorts(proto uint8) int {
	n := 0
	for _, p := range c.Ports {
		if p.Proto == proto {
			n++
		}
	}
	return n
}

func eventAddr(family uint8, a [16]byte) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(a)
}

// probeTemplates are the prebuilt frames of one scan, per family.
type probeTemplates struct{ v4, v6 *familyTemplates }

// familyTemplates are one family's frames.
type familyTemplates struct {
	syn  []*probe.SYN          // by source port - SportLo
	udp  map[uint16]*probe.UDP // by destination port; ports with one payload share a template
	echo *probe.Echo
}

func newProbeTemplates(cfg Config) *probeTemplates {
	p := &probeTemplates{}
	if cfg.Targets.LenIPv4() > 0 {
		p.v4 = newFamilyTemplates(cfg, cfg.Path)
	}
	if cfg.Targets.LenIPv6() > 0 {
		p.v6 = newFamilyTemplates(cfg, cfg.Path6)
	}
	return p
}

func newFamilyTemplates(cfg Config, path route.Path) *familyTemplates {
	p := &familyTemplates{udp: map[uint16]*probe.UDP{}}
	byPayload := map[*probe.Payload]*probe.UDP{}
	for _, port := range cfg.Ports {
		switch port.Proto {
		case targets.ProtoTCP:
			if p.syn != nil {
				continue
			}
			p.syn = make([]*probe.SYN, int(cfg.SportHi-cfg.SportLo)+1)
			for i := range p.syn {
				p.syn[i] = probe.NewSYN(path.SrcMAC, path.RouterMAC, path.Src, cfg.SportLo+uint16(i), cfg.Key)
			}
		case targets.ProtoUDP:
			pl := probe.PayloadFor(port.Num)
			if byPayload[pl] == nil {
				byPayload[pl] = probe.NewUDP(path.SrcMAC, path.RouterMAC, path.Src, cfg.SportLo, cfg.SportHi, pl, cfg.Key)
			}
			p.udp[port.Num] = byPayload[pl]
		case targets.ProtoICMP:
			p.echo = probe.NewEcho(path.SrcMAC, path.RouterMAC, path.Src, cfg.Key)
		}
	}
	return p
}

// fill writes one probe into buf and returns its length.
func (p *probeTemplates) fill(buf []byte, cfg *Config, addr netip.Addr, port targets.Port, sport uint16) int {
	f := p.v4
	if addr.Is6() {
		f = p.v6
	}
	switch port.Proto {
	case targets.ProtoUDP:
		return f.udp[port.Num].Fill(buf, addr, port.Num)
	case targets.ProtoICMP:
		return f.echo.Fill(buf, addr)
	}
	return f.syn[sport-cfg.SportLo].Fill(buf, addr, port.Num)
}

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

// minBatch is the fewest probes a send carries (transmit.MinBatch).
func (c Config) minBatch(batchMax int) int {
	return transmit.MinBatch(c.txMode(), c.Rate, batchMax)
}

// sendSlots is the scan program's transmitter batch (transmit.Slots).
func (c Config) sendSlots() uint32 { return transmit.Slots(c.txMode(), c.TxRelay, c.TxRelayCPU) }

// sendRelay is the transmitter's relay, if --tx-relay-cpu asked for one.
func (c Config) sendRelay() *loader.SendRelay {
	return transmit.Relay(c.txMode(), c.TxRelay, c.TxRelayCPU)
}

func (c Config) txMode() transmit.Mode {
	if c.Tx == "" {
		return transmit.ModeSocket
	}
	return c.Tx
}

// finishCounts fills the figures every scan kind derives from progress.
func (c Config) finishCounts(st *Stats, progress *Progress) {
	st.ProbesTotal = progress.Total.Load()
	if st.SendS > 0 {
		st.SendPPS = float64(st.ProbesSent) / st.SendS
	}
	st.Replies = progress.Replies.Load()
	st.Open = progress.Open.Load()
	st.Closed = progress.Closed.Load()
	st.FilteredICMP = progress.Filtered.Load()
	st.Up = progress.Up.Load()
	if st.Interrupted || c.Resume != (Position{}) {
		return
	}
	pairs := st.ProbesTotal / uint64(c.Retries+1)
	st.Filtered = pairs - min(pairs, st.Open+st.Closed+st.FilteredICMP+st.Up)
	if c.Shards == 1 { // a shard's share of UDP pairs is not known exactly
		udpPairs := c.Targets.Len() * uint64(c.countPorts(targets.ProtoUDP))
		st.UDPNoReply = udpPairs - min(udpPairs, progress.UDPAnswered.Load())
	}
}

// Validate checks a configuration before anything is loaded or sent.
func (c Config) Validate() error {
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
	switch {
	case c.txMode() != transmit.ModeSocket && c.txMode() != transmit.ModeXDP:
		return fmt.Errorf("--tx %q: use socket (AF_PACKET) or xdp (BPF_PROG_RUN live frames)", c.Tx)
	case c.Connect && c.txMode() != transmit.ModeSocket:
		return fmt.Errorf("--connect sends with the kernel's own sockets: --tx %s does not apply", c.Tx)
	case c.TxRelay && c.txMode() != transmit.ModeXDP:
		return fmt.Errorf("--tx-relay-cpu relays the frames --tx xdp sends from the kernel: add --tx xdp")
	case c.TxRelay && c.TxRelayCPU < 0:
		return fmt.Errorf("--tx-relay-cpu %d: want a CPU number", c.TxRelayCPU)
	case c.RxMode == loader.RxPcap && c.txMode() == transmit.ModeXDP:
		return fmt.Errorf("--tx xdp sends through the scan's XDP program, which --rx pcap does not load: use --rx xdp, or --tx socket")
	}
	if c.Connect {
		for _, p := range c.Ports {
			if p.Proto == targets.ProtoICMP {
				return fmt.Errorf("--connect cannot send ICMP echo (--ping): that needs a raw socket (CAP_NET_RAW)")
			}
		}
	}
	if !c.Connect && c.Targets.LenIPv4() > 0 && c.Targets.LenIPv6() > 0 && c.Path.Iface != c.Path6.Iface {
		return fmt.Errorf("IPv4 targets leave by %s and IPv6 targets by %s: one scan sends by one interface; scan each family in its own run",
			c.Path.Iface, c.Path6.Iface)
	}
	if c.RxMode == loader.RxPcap {
		if c.Targets.LenIPv6() > 0 {
			return fmt.Errorf("--rx pcap is the IPv4 SYN scan's libpcap baseline; IPv6 targets need --rx xdp")
		}
		for _, p := range c.Ports {
			if p.Proto != targets.ProtoTCP {
				return fmt.Errorf("--rx pcap is the SYN scan's libpcap baseline; %s probes need --rx xdp", targets.ProtoName(p.Proto))
			}
		}
	}
	return nil
}

// iface is the interface probes leave by (one for both families: see
// Validate).
func (c Config) iface() string {
	if c.Path.Iface != "" {
		return c.Path.Iface
	}
	return c.Path6.Iface
}

// udpCookie is the cookie of the UDP probe to addr:dport.
func (c Config) udpCookie(addr netip.Addr, dport uint16) uint32 {
	src := c.Path.Src
	if addr.Is6() {
		src = c.Path6.Src
	}
	return c.Key.Cookie(src, addr, targets.ProtoUDP, 0, dport)
}

// passOrder is the probe order of one pass. Each pass has its own, so a
// retry does not hit a target at the same moment of its rate limit window.
func (c Config) passOrder(pass uint64) targets.Permutation {
	return targets.NewPermutation(c.Targets.Len()*uint64(len(c.Ports)), c.Seed+pass*0x632be59bd9b4e019)
}

// probeAt is the probe at a position of a pass: the one mapping from
// positions to (address, port, source port), shared by the sender and
// --dry-run.
func (c Config) probeAt(perm targets.Permutation, pos Position) (addr netip.Addr, port targets.Port, sport uint16) {
	nports := uint64(len(c.Ports))
	x := perm.At(pos.Next)
	nsports := uint64(c.SportHi-c.SportLo) + 1
	return c.Targets.At(x / nports), c.Ports[x%nports], c.SportLo + uint16((pos.Next/c.Shards+pos.Pass)%nsports)
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
