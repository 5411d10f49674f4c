package targets

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// IP protocol numbers of the probes xdpscan sends.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58 // echo to an IPv6 target: still the "icmp" probe
)

// Port is one probe kind on every target: a TCP or UDP port, or an ICMP
// echo (Num 0), which masscan also treats as a port of its own.
type Port struct {
	Proto uint8
	Num   uint16
}

// Echo is the ICMP echo probe (--ping).
var Echo = Port{Proto: ProtoICMP}

// ProtoName is "tcp", "udp" or "icmp", the word every output format uses.
func ProtoName(proto uint8) string {
	switch proto {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP, ProtoICMPv6:
		return "icmp"
	}
	return strconv.Itoa(int(proto))
}

// String is the port in -p syntax: "80", "U:53", "icmp".
func (p Port) String() string {
	switch p.Proto {
	case ProtoUDP:
		return "U:" + strconv.Itoa(int(p.Num))
	case ProtoICMP, ProtoICMPv6:
		return "icmp"
	}
	return strconv.Itoa(int(p.Num))
}

// ParsePortSpec parses masscan's -p syntax: "22,80,8000-8100" are TCP,
// "T:" and "U:" prefixes choose TCP or UDP for the item they start
// ("T:22,U:53,U:161-162"). The result is sorted (TCP, then UDP) and
// de-duplicated.
func ParsePortSpec(s string) ([]Port, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no ports given (example: 22,80,443,U:53,U:161)")
	}
	// A set per protocol, not a list: memory is 16 KiB whatever the text
	// (300 copies of 1-65535 once took 318 MB).
	var tcp, udp portSet
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		set, rest := &tcp, item
		if len(item) > 2 && item[1] == ':' {
			switch item[0] {
			case 'T', 't':
				set = &tcp
			case 'U', 'u':
				set = &udp
			default:
				return nil, fmt.Errorf("port %q: unknown protocol prefix %q (T: for TCP, U: for UDP; --ping for ICMP echo)", item, item[:2])
			}
			rest = item[2:]
		}
		lo, hi, err := parsePortRange(rest, item)
		if err != nil {
			return nil, err
		}
		set.addRange(lo, hi)
	}
	out := make([]Port, 0, tcp.count+udp.count)
	for p := range tcp.each() {
		out = append(out, Port{Proto: ProtoTCP, Num: p})
	}
	for p := range udp.each() {
		out = append(out, Port{Proto: ProtoUDP, Num: p})
	}
	return out, nil
}

// portSet is a bitmap of the 65,536 port numbers.
type portSet struct {
	bits  [65536 / 64]uint64
	count int
}

// addRange works a word at a time, so a spec repeating 1-65535 costs 1,024
// steps an item, not 65,535.
func (s *portSet) addRange(lo, hi uint16) {
	for w := int(lo) / 64; w <= int(hi)/64; w++ {
		mask := ^uint64(0)
		if w == int(lo)/64 {
			mask &= ^uint64(0) << (lo % 64)
		}
		if w == int(hi)/64 {
			mask &= ^uint64(0) >> (63 - hi%64)
		}
		s.count += bits.OnesCount64(mask &^ s.bits[w])
		s.bits[w] |= mask
	}
}

// each yields the ports in the set, in increasing order.
func (s *portSet) each() func(yield func(uint16) bool) {
	return func(yield func(uint16) bool) {
		for p := range 65536 {
			if s.bits[p/64]&(1<<(p%64)) != 0 && !yield(uint16(p)) {
				return
			}
		}
	}
}

func comparePorts(a, b Port) int {
	if a.Proto != b.Proto {
		// TCP before UDP before ICMP, the order nmap lists them in.
		return protoRank(a.Proto) - protoRank(b.Proto)
	}
	return int(a.Num) - int(b.Num)
}

func protoRank(p uint8) int {
	switch p {
	case ProtoTCP:
		return 0
	case ProtoUDP:
		return 1
	}
	return 2
}

// ParsePorts parses "22,80,443,8000-8100" into sorted, de-duplicated ports.
// Port 0 and ports past 65535 are errors, as are reversed ranges.
func ParsePorts(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no ports given (example: 22,80,443,8000-8100)")
	}
	var set portSet // bounded memory, as in ParsePortSpec
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		a, b, err := parsePortRange(item, item)
		if err != nil {
			return nil, err
		}
		set.addRange(a, b)
	}
	out := make([]uint16, 0, set.count)
	for p := range set.each() {
		out = append(out, p)
	}
	return out, nil
}

// parsePortRange parses "80" or "8000-8100" (s, from the list item item).
func parsePortRange(s, item string) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo, item)
	if err != nil {
		return 0, 0, err
	}
	b := a
	if isRange {
		if b, err = parsePort(hi, item); err != nil {
			return 0, 0, err
		}
		if b < a {
			return 0, 0, fmt.Errorf("port range %q is reversed; did you mean %d-%d?", item, b, a)
		}
	}
	return a, b, nil
}

func parsePort(s, item string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("port %q in %q is not a number", s, item)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d in %q is out of range 1-65535", n, item)
	}
	return uint16(n), nil
}
