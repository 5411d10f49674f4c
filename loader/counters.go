package loader

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bpf"
)

// Counters are the XDP programs' per-CPU counters, summed over CPUs.
// Packets == L2Errors + NonIP + IPv4 + IPv6 and TCP == TCPSyn + TCPSynAck +
// TCPRst + TCPFin + TCPOther always hold.
type Counters struct {
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	L2Errors    uint64 `json:"l2_errors"`
	NonIP       uint64 `json:"non_ip"`
	IPv4        uint64 `json:"ipv4"`
	IPv6        uint64 `json:"ipv6"`
	VLAN        uint64 `json:"vlan"`
	Fragments   uint64 `json:"fragments"`
	TCP         uint64 `json:"tcp"`
	UDP         uint64 `json:"udp"`
	ICMP        uint64 `json:"icmp"`
	ICMPv6      uint64 `json:"icmpv6"`
	OtherL4     uint64 `json:"other_l4"`
	ParseErrors uint64 `json:"parse_errors"`
	BadQuotes   uint64 `json:"bad_quotes"`
	Matched     uint64 `json:"matched"`
	BadCookie   uint64 `json:"invalid_cookie"`
	Duplicates  uint64 `json:"duplicates"`
	RingLost    uint64 `json:"ring_lost"`
	Dropped     uint64 `json:"dropped"`
	TX          uint64 `json:"tx"`
	// NoMAC: received at TC ingress with no MAC header in view, after a
	// generic XDP program with xdp.frags (bpf/include/skbmac.h), and not
	// filtered (the capture's filter expression cannot read it).
	NoMAC uint64 `json:"no_mac_header"`
	// TCP by flag class; they add up to TCP.
	TCPSyn    uint64 `json:"tcp_syn"`     // SYN without ACK
	TCPSynAck uint64 `json:"tcp_syn_ack"` // SYN+ACK
	TCPRst    uint64 `json:"tcp_rst"`     // RST, with or without ACK
	TCPFin    uint64 `json:"tcp_fin"`     // FIN without RST
	TCPOther  uint64 `json:"tcp_other"`   // ACKs and data
}

// counterFields maps each counter_idx of bpf/include/counters.h to its field.
func (c *Counters) fields() []*uint64 {
	return []*uint64{
		bpf.ScanCounterIdxCOUNTER_PACKETS:      &c.Packets,
		bpf.ScanCounterIdxCOUNTER_BYTES:        &c.Bytes,
		bpf.ScanCounterIdxCOUNTER_L2ERRORS:     &c.L2Errors,
		bpf.ScanCounterIdxCOUNTER_NON_IP:       &c.NonIP,
		bpf.ScanCounterIdxCOUNTER_IPV4:         &c.IPv4,
		bpf.ScanCounterIdxCOUNTER_IPV6:         &c.IPv6,
		bpf.ScanCounterIdxCOUNTER_VLAN:         &c.VLAN,
		bpf.ScanCounterIdxCOUNTER_FRAGMENTS:    &c.Fragments,
		bpf.ScanCounterIdxCOUNTER_TCP:          &c.TCP,
		bpf.ScanCounterIdxCOUNTER_UDP:          &c.UDP,
		bpf.ScanCounterIdxCOUNTER_ICMP:         &c.ICMP,
		bpf.ScanCounterIdxCOUNTER_ICMPV6:       &c.ICMPv6,
		bpf.ScanCounterIdxCOUNTER_OTHER_L4:     &c.OtherL4,
		bpf.ScanCounterIdxCOUNTER_PARSE_ERRORS: &c.ParseErrors,
		bpf.ScanCounterIdxCOUNTER_BAD_QUOTES:   &c.BadQuotes,
		bpf.ScanCounterIdxCOUNTER_MATCHED:      &c.Matched,
		bpf.ScanCounterIdxCOUNTER_BAD_COOKIE:   &c.BadCookie,
		bpf.ScanCounterIdxCOUNTER_DUPLICATES:   &c.Duplicates,
		bpf.ScanCounterIdxCOUNTER_RING_LOST:    &c.RingLost,
		bpf.ScanCounterIdxCOUNTER_DROPPED:      &c.Dropped,
		bpf.ScanCounterIdxCOUNTER_TX:           &c.TX,
		bpf.ScanCounterIdxCOUNTER_NO_MAC:       &c.NoMAC,
		bpf.ScanCounterIdxCOUNTER_TCP_SYN:      &c.TCPSyn,
		bpf.ScanCounterIdxCOUNTER_TCP_SYN_ACK:  &c.TCPSynAck,
		bpf.ScanCounterIdxCOUNTER_TCP_RST:      &c.TCPRst,
		bpf.ScanCounterIdxCOUNTER_TCP_FIN:      &c.TCPFin,
		bpf.ScanCounterIdxCOUNTER_TCP_OTHER:    &c.TCPOther,
	}
}

// counterBlock is one CPU's value of a "counters" map: every counter_idx.
type counterBlock [bpf.ScanCounterIdxCOUNTER_MAX]uint64

// frameShapes are the counters of frames count_frame classified inline
// (bpf/include/shape.h): each stands for one more packet, IPv4 or IPv6
// packet and UDP or TCP header.
var frameShapes = []struct {
	idx       bpf.ScanCounterIdx
	ipv6, tcp bool
}{
	{bpf.ScanCounterIdxCOUNTER_SHAPE_IPV4UDP, false, false},
	{bpf.ScanCounterIdxCOUNTER_SHAPE_IPV4TCP, false, true},
	{bpf.ScanCounterIdxCOUNTER_SHAPE_IPV6UDP, true, false},
	{bpf.ScanCounterIdxCOUNTER_SHAPE_IPV6TCP, true, true},
}

// ReadCounters sums a per-CPU "counters" map over all CPUs, with the frame
// shapes' counts added in where they belong.
func ReadCounters(m *ebpf.Map) (Counters, error) {
	var perCPU []counterBlock
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return Counters{}, fmt.Errorf("read counters: %w", err)
	}
	var c Counters
	for idx, field := range c.fields() {
		for _, block := range perCPU {
			*field += block[idx]
		}
	}
	for _, s := range frameShapes {
		var n uint64
		for _, block := range perCPU {
			n += block[s.idx]
		}
		ip, l4 := &c.IPv4, &c.UDP
		if s.ipv6 {
			ip = &c.IPv6
		}
		if s.tcp {
			l4 = &c.TCP
		}
		c.Packets, *ip, *l4 = c.Packets+n, *ip+n, *l4+n
	}
	return c, nil
}

// Sub returns c - prev, field by field: the counts between two readings.
func (c Counters) Sub(prev Counters) Counters {
	out := c
	of, pf := out.fields(), prev.fields()
	for i := range of {
		*of[i] -= *pf[i]
	}
	return out
}

// Add returns c + o, field by field: two programs' counts together.
func (c Counters) Add(o Counters) Counters {
	out := c
	of, pf := out.fields(), o.fields()
	for i := range of {
		*of[i] += *pf[i]
	}
	return out
}
