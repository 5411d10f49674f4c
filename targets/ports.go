package targets

import (
	"fmt"
	"slices"
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
	var out []Port
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		proto, rest := ProtoTCP, item
		if len(item) > 2 && item[1] == ':' {
			switch item[0] {
			case 'T', 't':
				proto = ProtoTCP
			case 'U', 'u':
				proto = ProtoUDP
			default:
				return nil, fmt.Errorf("port %q: unknown protocol prefix %q (T: for TCP, U: for UDP; --ping for ICMP echo)", item, item[:2])
			}
			rest = item[2:]
		}
		lo, hi, err := parsePortRange(rest, item)
		if err != nil {
			return nil, err
		}
		for p := int(lo); p <= int(hi); p++ {
			out = append(out, Port{Proto: proto, Num: uint16(p)})
		}
	}
	slices.SortFunc(out, comparePorts)
	return slices.Compact(out), nil
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
	var out []uint16
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		a, b, err := parsePortRange(item, item)
		if err != nil {
			return nil, err
		}
		for p := int(a); p <= int(b); p++ {
			out = append(out, uint16(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
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
