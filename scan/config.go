package scan

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
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
	// Confirm re-probes each held weak UDP result with a fresh cookie
	// after the wait, and prints it only if the retry agrees (--confirm;
	// see conflict.go). XDP receive only.
	Confirm bool
	// Senders is the number of sending threads (--senders; 0 or 1: one),
	// each on a slice of the permutation (senders.go).
	Senders int
	// Rings spreads the reply events over a ring per receiving CPU
	// (--rings; "" is loader.RingsAuto: rings.go). XDP receive only.
	Rings loader.RingsMode
	// Set on a slice of the walk (sliceConfig): the source-port divisor
	// one sender would use.
	sportShards uint64
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

func (c Config) countPorts(proto uint8) int {
	n := 0
	for _, p := range c.Ports {
		if p.Proto == proto {
			n++
		}
	}
	return n
}

// minBatch is the fewest probes a send carries (transmit.MinBatch).
func (c Config) minBatch(batchMax int) int {
	return transmit.MinBatch(c.Rate, batchMax)
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
	case c.validateRate() != nil:
		return c.validateRate()
	case c.Shards == 0 || c.Shard >= c.Shards:
		return fmt.Errorf("--shard %d must be below --shards %d", c.Shard, c.Shards)
	case c.SportLo > c.SportHi:
		return fmt.Errorf("source port range %d-%d is reversed", c.SportLo, c.SportHi)
	case c.Confirm && (c.Connect || c.RxMode == loader.RxPcap):
		return fmt.Errorf("--confirm needs the XDP receive path (not --connect nor --rx pcap)")
	case c.Retries < 0:
		return fmt.Errorf("--retries must be >= 0")
	case c.Senders < 0 || c.Senders > MaxSenders:
		return fmt.Errorf("--senders %d: use 1 to %d", c.Senders, MaxSenders)
	case c.Wait < 0:
		return fmt.Errorf("--wait %v: must be 0 or more", c.Wait)
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
// --dry-run. A pointer receiver: Config is over 1 KB, and the sender calls
// this once a probe (by value, each call copied it).
func (c *Config) probeAt(perm targets.Permutation, pos Position) (addr netip.Addr, port targets.Port, sport uint16) {
	nports := uint64(len(c.Ports))
	x := perm.At(pos.Next)
	nsports := uint64(c.SportHi-c.SportLo) + 1
	shards := c.Shards
	if c.sportShards != 0 { // a sender's slice: the ports one sender gives
		shards = c.sportShards
	}
	return c.Targets.At(x / nports), c.Ports[x%nports], c.SportLo + uint16((pos.Next/shards+pos.Pass)%nsports)
}

// validateRate refuses rates no scan can keep: below one probe an hour
// the scan would never end (and its waits overflow a Duration), and NaN or
// infinity are not rates.
func (c Config) validateRate() error {
	if !(c.Rate >= MinRate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("--rate %v: must be a number of probes per second from %.6f (one an hour) up", c.Rate, MinRate)
	}
	return nil
}
