package loader

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// ScanConfig configures the scan-reply program. Its fields become the
// program's `volatile const` globals, fixed at load time, so the verifier
// prunes the paths a scan does not use.
type ScanConfig struct {
	// Our source addresses; replies must be addressed to one of them. With
	// neither, the program matches nothing and only counts (monitor mode).
	SourceIPv4, SourceIPv6 netip.Addr
	// Our probes' source port range, inclusive.
	SourcePortLo, SourcePortHi uint16
	// The probe cookie's SipHash key.
	CookieKey [2]uint64
	// RingBytes is the ring buffer's size: a power of two, a multiple of the
	// page size. 0 means 4 MiB.
	RingBytes uint32
	// RingWakeupBytes defers reader wakeups until this many bytes are
	// waiting; 0 leaves wakeups to the kernel. See ringbuf.Options.
	RingWakeupBytes uint32
	// ResetOpen answers each validated SYN-ACK with a RST sent by XDP_TX
	// (IPv4 and IPv6), so the target stops retransmitting; otherwise it is
	// dropped.
	ResetOpen bool
	// UDPConfirm also accepts answers to UDP probes' confirming retries
	// (probe.UDP.FillConfirm), marked Confirm in their events.
	UDPConfirm bool
	// UDPEchoes names the UDP services that echo bytes of the request, and
	// where: a reply from such a port must carry the cookie there.
	UDPEchoes map[uint16]UDPEcho
	// DedupEntries is how many (address, port) pairs the in-kernel table
	// that reports each pair once should hold without evicting one (an
	// evicted pair may be reported again: a duplicate, never a loss). It
	// takes 32 to 64 bytes a pair (8-slot buckets, one per two pairs rounded
	// up to a power of two); 0 means 262144.
	DedupEntries uint32
	// DedupPerCPU gives each CPU a table of its own (a per-CPU array): no
	// line of it moves between CPUs, at DedupEntries' memory per CPU. A
	// pair answered on two CPUs may then be reported by each (user space
	// refuses the second).
	DedupPerCPU bool
	// SendSlots enables the program's transmitter (Scan.Sender) with room
	// for this many frames a batch; 0 leaves it out.
	SendSlots uint32
	// SendSenders is how many senders share the transmitter, each with
	// SendSlots slots and a state of its own (Scan.SenderAt); 0 is 1.
	SendSenders uint32
	// SendRelay, with SendSlots, hands the transmitter's frames to a
	// kthread on another CPU, which sends them (see SendRelay).
	SendRelay *SendRelay
	// Rings gives CPUs rings of their own for the reply events (zero: the
	// one shared ring, `events`): with replies on several CPUs at once
	// their reserves then take no lock another CPU holds.
	Rings RingPlan
}

// SendRelay moves the transmit of the scan program's frames to one CPU's
// cpumap kthread (Linux 5.9 for a program in a cpumap entry): the sending
// thread only fills frames and queues them, and the kthread puts them on
// the interface. On veth the peer's receive path runs in the transmitting
// CPU's softirq, so it moves with them, as RPS moves it for a socket
// sender. The queue gives the sender flow control (Sender.Send never
// queues more than Queue frames), which a veth peer's 256-frame ring does
// not.
type SendRelay struct {
	CPU   uint32
	Queue uint32 // frames; 0 means 4096. The kernel allows up to 16384.
}

const defaultRelayQueue = 4096

// EchoKind says what a UDP service's answer echoes of our request
// (bpf/include/scan_reply.h's enum udp_echo_kind).
type EchoKind uint8

const (
	EchoNone EchoKind = iota
	EchoDNS           // transaction ID and the question name's letter case
	EchoNTP           // origin timestamp
	EchoSNMP          // request-id
)

// UDPEcho describes the payload of the UDP probes to one port: what its
// answers echo, and the payload's length and ones-complement sum with every
// cookie bit clear (for checking the checksum an ICMP error quotes).
type UDPEcho struct {
	Kind EchoKind
	Len  uint16
	Sum  uint32
}

// Scan is the loaded scan-reply program and its maps.
type Scan struct {
	Objects     bpf.ScanObjects
	sendSlots   uint32
	sendSenders uint32
	sendMagic   uint64
	relay       *SendRelay // with its queue length resolved
	cfg         ScanConfig // what LoadTC configures its program with
	// CPURings are the per-CPU rings of ScanConfig.Rings, in its order.
	CPURings []*ebpf.Map
}

// LoadScan loads the scan-reply program configured by cfg.
func LoadScan(cfg ScanConfig) (*Scan, error) {
	if cfg.SourcePortLo > cfg.SourcePortHi {
		return nil, fmt.Errorf("load scan program: source port range %d-%d is reversed", cfg.SourcePortLo, cfg.SourcePortHi)
	}
	if err := prepare(); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadScan()
	if err != nil {
		return nil, fmt.Errorf("read embedded scan program: %w", err)
	}

	var magic uint64
	senders := max(cfg.SendSenders, 1)
	if cfg.SendSlots != 0 {
		if senders > 64 || cfg.SendSlots > 1<<16 {
			return nil, fmt.Errorf("load scan program: %d senders of %d slots: at most 64 of 65536", senders, cfg.SendSlots)
		}
		spec.Maps["send_slots"].MaxEntries = cfg.SendSlots * senders
		spec.Maps["send_states"].MaxEntries = senders
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("load scan program: draw the transmitter's magic: %w", err)
		}
		magic = binary.NativeEndian.Uint64(b[:]) | 1 // never 0: 0 turns it off
	}
	relay, cpus, err := resolveRelay(cfg)
	if err != nil {
		return nil, err
	}
	if relay != nil {
		spec.Maps["send_relay"].MaxEntries = uint32(cpus)
		if err := setVar(spec, "send_relay_cpu", relay.CPU); err != nil {
			return nil, fmt.Errorf("configure scan program: %w", err)
		}
	}
	vars := cfg.replyVars()
	vars["send_magic"], vars["send_batch"] = magic, cfg.SendSlots
	for name, value := range vars {
		if err := setVar(spec, name, value); err != nil {
			return nil, fmt.Errorf("configure scan program: %w", err)
		}
	}
	if cfg.RingBytes != 0 {
		spec.Maps["events"].MaxEntries = cfg.RingBytes
	}
	if err := configureRings(spec, cfg.Rings); err != nil {
		return nil, fmt.Errorf("configure scan program: %w", err)
	}
	buckets := dedupBuckets(cfg.DedupEntries)
	spec.Maps["dedup"].MaxEntries = buckets
	if cfg.DedupPerCPU {
		spec.Maps["dedup"].Type = ebpf.PerCPUArray
	}
	if err := setVar(spec, "dedup_mask", buckets-1); err != nil {
		return nil, fmt.Errorf("configure scan program: %w", err)
	}

	s := &Scan{sendSlots: cfg.SendSlots, sendSenders: senders, sendMagic: magic, relay: relay, cfg: cfg}
	if err := spec.LoadAndAssign(&s.Objects, nil); err != nil {
		return nil, loadError("scan program", err)
	}
	if cfg.Rings.Rings() > 0 {
		rings, err := fillRings(s.Objects.CpuRings, spec.Maps["cpu_rings"].InnerMap, cfg.Rings)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("configure scan program: %w", err)
		}
		s.CPURings = rings
	}
	if relay != nil {
		entry := bpf.ScanBpfCpumapVal{Qsize: relay.Queue}
		entry.BpfProg.Fd = int32(s.Objects.XdpscanSendRelay.FD())
		if err := s.Objects.SendRelay.Put(relay.CPU, &entry); err != nil {
			s.Close()
			return nil, fmt.Errorf("start the send relay on CPU %d (a cpumap entry running xdpscan_send_relay; %s): %w",
				relay.CPU, kfloor.CPUMapPrograms.Explain(), err)
		}
	}
	for port, e := range cfg.UDPEchoes {
		if e.Kind > EchoSNMP || int(e.Len) > SendFrame {
			s.Close()
			return nil, fmt.Errorf("configure scan program: UDP payload for port %d: echo kind %d, %d bytes (want kind 0-%d, at most %d bytes)", port, e.Kind, e.Len, EchoSNMP, SendFrame)
		}
		if err := s.Objects.UdpEchoes.Put(port, bpf.ScanUdpEcho{Kind: uint8(e.Kind), Len: e.Len, Sum: e.Sum}); err != nil {
			s.Close()
			return nil, fmt.Errorf("configure scan program: UDP echo for port %d: %w", port, err)
		}
	}
	return s, nil
}

// resolveRelay checks cfg's relay and fills in its defaults; cpus is the
// number of possible CPUs, the cpumap's size.
func resolveRelay(cfg ScanConfig) (r *SendRelay, cpus int, err error) {
	if cfg.SendRelay == nil {
		return nil, 0, nil
	}
	relay := *cfg.SendRelay
	if cfg.SendSlots == 0 {
		return nil, 0, errors.New("load scan program: a send relay needs the transmitter (ScanConfig.SendSlots)")
	}
	if relay.Queue == 0 {
		relay.Queue = defaultRelayQueue
	}
	if relay.Queue < cfg.SendSlots || relay.Queue > 16384 {
		return nil, 0, fmt.Errorf("load scan program: send relay queue of %d frames: want %d (one batch) to 16384", relay.Queue, cfg.SendSlots)
	}
	if cpus, err = ebpf.PossibleCPU(); err != nil {
		return nil, 0, fmt.Errorf("load scan program: count the CPUs for the send relay: %w", err)
	}
	if int(relay.CPU) >= cpus {
		return nil, 0, fmt.Errorf("load scan program: send relay on CPU %d: this machine has CPUs 0-%d", relay.CPU, cpus-1)
	}
	return &relay, cpus, nil
}

// Relay is the send relay the program was loaded with (its queue length
// resolved), or nil.
func (s *Scan) Relay() *SendRelay { return s.relay }

// RelayThread is the name of the kernel thread that runs the send relay
// (the kernel's "cpumap/CPU/map:ID"), or "" without a relay.
func (s *Scan) RelayThread() string {
	if s.relay == nil {
		return ""
	}
	info, err := s.Objects.SendRelay.Info()
	if err != nil {
		return ""
	}
	id, ok := info.ID()
	if !ok {
		return ""
	}
	return fmt.Sprintf("cpumap/%d/map:%d", s.relay.CPU, id)
}

// Program is the XDP program to attach.
func (s *Scan) Program() *ebpf.Program { return s.Objects.XdpscanScan }

// Events is the ring buffer of scan_event records.
func (s *Scan) Events() *ebpf.Map { return s.Objects.Events }

// Counters sums the program's per-CPU counters.
func (s *Scan) Counters() (Counters, error) { return ReadCounters(s.Objects.Counters) }

// Rings are every ring the program writes: the shared one, then the
// per-CPU ones (none unless ScanConfig.Rings asked for them), as a reader
// opens them (ringbuf.NewMulti).
func (s *Scan) Rings() []*ebpf.Map { return append([]*ebpf.Map{s.Objects.Events}, s.CPURings...) }

// Close releases the program and its maps. Detach any Attachment first.
func (s *Scan) Close() error {
	for _, r := range s.CPURings {
		r.Close()
	}
	return s.Objects.Close()
}

// dedupBuckets is the dedup table's size for pairs pairs: a power of two
// (the program masks a hash) of 8-slot buckets, at most a quarter full: a
// bucket overflows (and evicts) once in about 4000.
func dedupBuckets(pairs uint32) uint32 {
	if pairs == 0 {
		pairs = 1 << 18
	}
	return uint32(1) << bits.Len64(max(uint64(pairs)/2, 64)-1)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// replyVars are the reply program's settings (bpf/include/scan_reply.h's
// globals), the same in its XDP and TC variants.
func (cfg ScanConfig) replyVars() map[string]any {
	var v4 [4]byte
	if cfg.SourceIPv4.Is4() {
		v4 = cfg.SourceIPv4.As4()
	}
	var v6 [16]byte
	if cfg.SourceIPv6.Is6() && !cfg.SourceIPv6.Is4In6() {
		v6 = cfg.SourceIPv6.As16()
	}
	return map[string]any{
		// The program compares against the address as it sits in the packet.
		"scanner_ipv4":      v4,
		"scanner_ipv6_hi":   binary.NativeEndian.Uint64(v6[:8]),
		"scanner_ipv6_lo":   binary.NativeEndian.Uint64(v6[8:]),
		"sport_lo":          cfg.SourcePortLo,
		"sport_hi":          cfg.SourcePortHi,
		"cookie_k0":         cfg.CookieKey[0],
		"cookie_k1":         cfg.CookieKey[1],
		"ring_wakeup_bytes": cfg.RingWakeupBytes,
		"reset_open":        boolByte(cfg.ResetOpen),
		"udp_confirm":       boolByte(cfg.UDPConfirm),
	}
}
