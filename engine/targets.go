package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"slices"
	"strings"
)

// Range is an inclusive range of IPv4 addresses as numbers.
type Range struct{ Lo, Hi uint32 }

func (r Range) size() uint64 { return uint64(r.Hi) - uint64(r.Lo) + 1 }

func (r Range) String() string {
	return fmt.Sprintf("%s-%s", u32ToAddr(r.Lo), u32ToAddr(r.Hi))
}

// RangeSet is a sorted list of disjoint, non-adjacent ranges. Its memory
// grows with the number of ranges given, never with the addresses in them.
type RangeSet struct {
	ranges []Range
	// cum[i] is the number of addresses in ranges[:i].
	cum []uint64
}

// NewRangeSet merges rs into a RangeSet.
func NewRangeSet(rs []Range) RangeSet {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Range) int {
		if a.Lo != b.Lo {
			return cmpU32(a.Lo, b.Lo)
		}
		return cmpU32(a.Hi, b.Hi)
	})
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r.Lo) <= uint64(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	s := RangeSet{ranges: out, cum: make([]uint64, len(out)+1)}
	for i, r := range out {
		s.cum[i+1] = s.cum[i] + r.size()
	}
	return s
}

// Len is the number of addresses.
func (s RangeSet) Len() uint64 { return s.cum[len(s.cum)-1] }

// Ranges returns the merged ranges.
func (s RangeSet) Ranges() []Range { return s.ranges }

// At returns the i-th address (0 <= i < Len) in ascending order.
func (s RangeSet) At(i uint64) uint32 {
	k, _ := slices.BinarySearch(s.cum, i+1)
	return s.ranges[k-1].Lo + uint32(i-s.cum[k-1])
}

// Contains reports whether a is in the set.
func (s RangeSet) Contains(a uint32) bool {
	k, found := slices.BinarySearchFunc(s.ranges, a, func(r Range, a uint32) int { return cmpU32(r.Lo, a) })
	if found {
		return true
	}
	return k > 0 && s.ranges[k-1].Hi >= a
}

// Subtract returns s minus o.
func (s RangeSet) Subtract(o RangeSet) RangeSet {
	var out []Range
	j := 0
	for _, r := range s.ranges {
		lo := uint64(r.Lo)
		for j < len(o.ranges) && o.ranges[j].Hi < r.Lo {
			j++
		}
		for k := j; k < len(o.ranges) && uint64(o.ranges[k].Lo) <= uint64(r.Hi); k++ {
			x := o.ranges[k]
			if uint64(x.Lo) > lo {
				out = append(out, Range{uint32(lo), x.Lo - 1})
			}
			lo = uint64(x.Hi) + 1
		}
		if lo <= uint64(r.Hi) {
			out = append(out, Range{uint32(lo), r.Hi})
		}
	}
	return NewRangeSet(out)
}

// Intersect returns the first range of s that overlaps o, if any.
func (s RangeSet) firstOverlap(o RangeSet) (Range, Range, bool) {
	for _, a := range s.ranges {
		for _, b := range o.ranges {
			if a.Lo <= b.Hi && b.Lo <= a.Hi {
				return Range{max(a.Lo, b.Lo), min(a.Hi, b.Hi)}, b, true
			}
		}
	}
	return Range{}, Range{}, false
}

// ParseTarget parses one IPv4 address, CIDR prefix, or a-b range.
func ParseTarget(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err := parseV4(lo, s)
		if err != nil {
			return Range{}, err
		}
		b, err := parseV4(hi, s)
		if err != nil {
			return Range{}, err
		}
		if b < a {
			return Range{}, fmt.Errorf("range %q is reversed; did you mean %s-%s?", s, strings.TrimSpace(hi), strings.TrimSpace(lo))
		}
		return Range{a, b}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Range{}, fmt.Errorf("bad CIDR %q: %v", s, unwrapParse(err))
		}
		if !p.Addr().Is4() {
			return Range{}, errIPv6(s, new(big.Int).Lsh(big.NewInt(1), uint(128-p.Bits())))
		}
		p = p.Masked()
		lo := addrToU32(p.Addr())
		hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
		return Range{lo, hi}, nil
	}
	a, err := parseV4(s, s)
	if err != nil {
		return Range{}, err
	}
	return Range{a, a}, nil
}

// ParseTargetList parses targets separated by commas or white space.
func ParseTargetList(s string) ([]Range, error) {
	var out []Range
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		r, err := ParseTarget(f)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadTargets reads one target per line; '#' starts a comment. Errors name
// the line.
func ReadTargets(r io.Reader, name string) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		rs, err := ParseTargetList(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, rs...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// Blocklist is IANA's IPv4 special-purpose registry (RFC 6890 and
// successors): never scanned unless lifted with --allow.
var Blocklist = []struct {
	Prefix string
	Why    string
}{
	{"0.0.0.0/8", "this network (RFC 791)"},
	{"10.0.0.0/8", "private use (RFC 1918)"},
	{"100.64.0.0/10", "shared address space (RFC 6598)"},
	{"127.0.0.0/8", "loopback (RFC 1122)"},
	{"169.254.0.0/16", "link local (RFC 3927)"},
	{"172.16.0.0/12", "private use (RFC 1918)"},
	{"192.0.0.0/24", "IETF protocol assignments (RFC 6890)"},
	{"192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"},
	{"192.88.99.0/24", "6to4 relay anycast (RFC 7526)"},
	{"192.168.0.0/16", "private use (RFC 1918)"},
	{"198.18.0.0/15", "benchmarking (RFC 2544)"},
	{"198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"},
	{"203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"},
	{"224.0.0.0/4", "multicast (RFC 5771)"},
	{"240.0.0.0/4", "reserved (RFC 1112)"},
	{"255.255.255.255/32", "limited broadcast (RFC 919)"},
}

// TargetSpec is what the user asked to scan.
type TargetSpec struct {
	Include []Range
	Exclude []Range
	Allow   []Range // lifts the blocklist for these ranges only
}

// Resolve applies excludes and the blocklist. Excluded addresses are never
// produced; a target in the blocklist (and not allowed) is an error, not a
// silent skip, because it almost always means a typo.
func (t TargetSpec) Resolve() (RangeSet, error) {
	if len(t.Include) == 0 {
		return RangeSet{}, fmt.Errorf("no targets given (an address, a CIDR like 198.18.0.0/24, a range a-b, or -iL FILE)")
	}
	set := NewRangeSet(t.Include).Subtract(NewRangeSet(t.Exclude))
	if set.Len() == 0 {
		return RangeSet{}, fmt.Errorf("no targets left after --exclude")
	}
	allow := NewRangeSet(t.Allow)
	for _, b := range Blocklist {
		r, _ := ParseTarget(b.Prefix)
		blocked := NewRangeSet([]Range{r}).Subtract(allow)
		if hit, _, ok := set.firstOverlap(blocked); ok {
			return RangeSet{}, fmt.Errorf("targets %s are in the built-in blocklist: %s is %s; "+
				"scan it only if it is yours, with --allow %s", hit, b.Prefix, b.Why, b.Prefix)
		}
	}
	return set, nil
}

func parseV4(s, whole string) (uint32, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("bad address %q in %q: %v", strings.TrimSpace(s), whole, unwrapParse(err))
	}
	if !a.Is4() {
		return 0, errIPv6(whole, big.NewInt(1))
	}
	return addrToU32(a), nil
}

// errIPv6 refuses an IPv6 target, saying how many addresses it means.
func errIPv6(target string, count *big.Int) error {
	msg := fmt.Sprintf("%q is IPv6 (%s addresses): xdpscan scans IPv4 targets only for now", target, count)
	if count.Cmp(big.NewInt(1<<24)) > 0 {
		msg += "; and no prefix this wide could be swept at any rate: list the addresses to probe instead"
	}
	return errors.New(msg)
}

func unwrapParse(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// U32ToAddr converts a range element to an address.
func U32ToAddr(v uint32) netip.Addr { return u32ToAddr(v) }

// AddrToU32 converts an IPv4 address to a range element.
func AddrToU32(a netip.Addr) uint32 { return addrToU32(a) }

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
