package targets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// Range is an inclusive range of addresses of one family.
type Range struct{ Lo, Hi netip.Addr }

// String is the range as a CIDR prefix when it is exactly one, else lo-hi.
func (r Range) String() string {
	if p, ok := r.prefix(); ok {
		return p.String()
	}
	return fmt.Sprintf("%s-%s", r.Lo, r.Hi)
}

func (r Range) prefix() (netip.Prefix, bool) {
	lo, hi := toU128(r.Lo), toU128(r.Hi)
	x := u128{lo.hi ^ hi.hi, lo.lo ^ hi.lo}
	// x must be 2^k - 1 and lo's low k bits zero.
	var k int
	switch {
	case x.hi == 0:
		k = bits.Len64(x.lo)
		if x.lo != 1<<k-1 && k < 64 {
			return netip.Prefix{}, false
		}
	case x.lo == ^uint64(0):
		k = 64 + bits.Len64(x.hi)
		if x.hi != 1<<(k-64)-1 && k < 128 {
			return netip.Prefix{}, false
		}
	default:
		return netip.Prefix{}, false
	}
	if lo.hi&x.hi != 0 || lo.lo&x.lo != 0 {
		return netip.Prefix{}, false
	}
	bitsLeft := r.Lo.BitLen() - k
	if bitsLeft < 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(r.Lo, bitsLeft), true
}

// span is a Range as numbers.
type span struct{ lo, hi u128 }

func (s span) size() uint64 { return s.hi.diff(s.lo) + 1 }

func (s span) rng() Range { return Range{s.lo.addr(), s.hi.addr()} }

// MaxIPv6Targets bounds an IPv6 target list: 2^32 addresses (a /96), as
// many as the whole IPv4 space. A /64 holds 2^64 and could not be swept in
// a lifetime at any rate.
const MaxIPv6Targets = 1 << 32

// RangeSet is a sorted list of disjoint, non-adjacent ranges of IPv4 and
// IPv6 addresses (IPv4 first). Its memory grows with the number of ranges
// given, never with the addresses in them.
type RangeSet struct {
	spans []span
	// cum[i] is the number of addresses in spans[:i].
	cum []uint64
}

// NewRangeSet merges rs into a RangeSet.
func NewRangeSet(rs []Range) RangeSet {
	spans := make([]span, 0, len(rs))
	for _, r := range rs {
		spans = append(spans, span{toU128(r.Lo), toU128(r.Hi)})
	}
	return newSpanSet(spans)
}

func newSpanSet(spans []span) RangeSet {
	slices.SortFunc(spans, func(a, b span) int {
		if c := a.lo.cmp(b.lo); c != 0 {
			return c
		}
		return a.hi.cmp(b.hi)
	})
	var out []span
	for _, r := range spans {
		// Merge overlapping and adjacent spans, never across families.
		if n := len(out); n > 0 && out[n-1].hi.isV4() == r.lo.isV4() &&
			(out[n-1].hi == maxU128 || r.lo.cmp(out[n-1].hi.add(1)) <= 0) {
			if r.hi.cmp(out[n-1].hi) > 0 {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	s := RangeSet{spans: out, cum: make([]uint64, len(out)+1)}
	for i, r := range out {
		s.cum[i+1] = s.cum[i] + r.size()
	}
	return s
}

// Len is the number of addresses.
func (s RangeSet) Len() uint64 {
	if len(s.cum) == 0 {
		return 0
	}
	return s.cum[len(s.cum)-1]
}

// LenIPv4 and LenIPv6 count the addresses of each family.
func (s RangeSet) LenIPv4() uint64 {
	var n uint64
	for _, r := range s.spans {
		if r.lo.isV4() {
			n += r.size()
		}
	}
	return n
}

func (s RangeSet) LenIPv6() uint64 { return s.Len() - s.LenIPv4() }

// Ranges returns the merged ranges.
func (s RangeSet) Ranges() []Range {
	out := make([]Range, len(s.spans))
	for i, r := range s.spans {
		out[i] = r.rng()
	}
	return out
}

// At returns the i-th address (0 <= i < Len) in ascending order. It
// allocates nothing.
func (s RangeSet) At(i uint64) netip.Addr {
	k, _ := slices.BinarySearch(s.cum, i+1)
	return s.spans[k-1].lo.add(i - s.cum[k-1]).addr()
}

// First returns the lowest address of the given family, if any.
func (s RangeSet) First(ipv6 bool) (netip.Addr, bool) {
	for _, r := range s.spans {
		if r.lo.isV4() != ipv6 {
			return r.lo.addr(), true
		}
	}
	return netip.Addr{}, false
}

// Contains reports whether a is in the set.
func (s RangeSet) Contains(a netip.Addr) bool {
	u := toU128(a)
	k, found := slices.BinarySearchFunc(s.spans, u, func(r span, u u128) int { return r.lo.cmp(u) })
	if found {
		return true
	}
	return k > 0 && s.spans[k-1].hi.cmp(u) >= 0
}

// Subtract returns s minus o.
func (s RangeSet) Subtract(o RangeSet) RangeSet {
	var out []span
	j := 0
	for _, r := range s.spans {
		lo, done := r.lo, false
		for j < len(o.spans) && o.spans[j].hi.cmp(r.lo) < 0 {
			j++
		}
		for k := j; k < len(o.spans) && o.spans[k].lo.cmp(r.hi) <= 0; k++ {
			x := o.spans[k]
			if x.lo.cmp(lo) > 0 {
				out = append(out, span{lo, x.lo.sub1()})
			}
			if x.hi.cmp(r.hi) >= 0 {
				done = true
				break
			}
			lo = x.hi.add(1)
		}
		if !done && lo.cmp(r.hi) <= 0 {
			out = append(out, span{lo, r.hi})
		}
	}
	return newSpanSet(out)
}

// firstOverlap returns the first part of s that overlaps o, if any.
func (s RangeSet) firstOverlap(o RangeSet) (Range, bool) {
	for _, a := range s.spans {
		for _, b := range o.spans {
			if a.lo.cmp(b.hi) <= 0 && b.lo.cmp(a.hi) <= 0 {
				lo, hi := a.lo, a.hi
				if b.lo.cmp(lo) > 0 {
					lo = b.lo
				}
				if b.hi.cmp(hi) < 0 {
					hi = b.hi
				}
				return span{lo, hi}.rng(), true
			}
		}
	}
	return Range{}, false
}

// ParseTarget parses one address, CIDR prefix, or a-b range, IPv4 or IPv6.
func ParseTarget(s string) (Range, error) {
	s = strings.TrimSpace(s)
	var r Range
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err := parseAddr(lo, s)
		if err != nil {
			return Range{}, err
		}
		b, err := parseAddr(hi, s)
		if err != nil {
			return Range{}, err
		}
		if a.Is4() != b.Is4() {
			return Range{}, fmt.Errorf("range %q mixes IPv4 and IPv6", s)
		}
		if b.Less(a) {
			return Range{}, fmt.Errorf("range %q is reversed; did you mean %s-%s?", s, strings.TrimSpace(hi), strings.TrimSpace(lo))
		}
		r = Range{a, b}
	} else if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Range{}, fmt.Errorf("bad CIDR %q: %v", s, unwrapParse(err))
		}
		if p.Addr().Is4In6() {
			return Range{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix: write the IPv4 form", s)
		}
		r = prefixRange(p)
	} else {
		a, err := parseAddr(s, s)
		if err != nil {
			return Range{}, err
		}
		r = Range{a, a}
	}
	return r, nil
}

// prefixRange is the range of a prefix, without any size limit.
func prefixRange(p netip.Prefix) Range {
	p = p.Masked()
	lo := toU128(p.Addr())
	hostBits := p.Addr().BitLen() - p.Bits()
	var mask u128
	switch {
	case hostBits >= 128:
		mask = maxU128
	case hostBits >= 64:
		mask = u128{1<<(hostBits-64) - 1, ^uint64(0)}
	default:
		mask = u128{0, 1<<hostBits - 1}
	}
	return span{lo, u128{lo.hi | mask.hi, lo.lo | mask.lo}}.rng()
}

// errTooWide refuses an IPv6 target that could not be swept, saying how
// many addresses it means.
func errTooWide(r Range) error {
	a, b := toU128(r.Lo), toU128(r.Hi)
	ab, bb := a.bytes(), b.bytes()
	n := new(big.Int).Sub(new(big.Int).SetBytes(bb[:]), new(big.Int).SetBytes(ab[:]))
	n.Add(n, big.NewInt(1))
	return fmt.Errorf("%q is %s addresses: an IPv6 target may hold at most 2^32 (a /96); "+
		"no wider one could be swept at any rate: list the addresses to probe (-iL FILE) or narrow the prefix", r.String(), n)
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

// MaxTargetLine is the longest line a target file may hold: far more than
// any list of targets a line needs, and a bound on what one line can cost.
const MaxTargetLine = 64 << 10

// ReadTargets reads one target per line; '#' starts a comment. Errors name
// the line.
func ReadTargets(r io.Reader, name string) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, MaxTargetLine+1) // +1: the newline
	line := 1
	for ; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		rs, err := ParseTargetList(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, rs...)
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("%s:%d: line longer than %d bytes: put one target (or a few) per line", name, line, MaxTargetLine)
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// Blocklist is IANA's IPv4 and IPv6 special-purpose registries (RFC 6890
// and successors): never scanned unless lifted with --allow.
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
	{"::/128", "unspecified address (RFC 4291)"},
	{"::1/128", "loopback (RFC 4291)"},
	{"100::/64", "discard-only (RFC 6666)"},
	{"2001:2::/48", "benchmarking (RFC 5180)"},
	{"2001:db8::/32", "documentation (RFC 3849)"},
	{"3fff::/20", "documentation (RFC 9637)"},
	{"fc00::/7", "unique local (RFC 4193)"},
	{"fe80::/10", "link local (RFC 4291)"},
	{"ff00::/8", "multicast (RFC 4291)"},
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
		return RangeSet{}, fmt.Errorf("no targets given (an address, a CIDR like 198.18.0.0/24 or 2001:2::/120, a range a-b, or -iL FILE)")
	}
	// Excludes, allows and the blocklist may be as wide as they like; a
	// target to sweep may not.
	for _, r := range t.Include {
		if r.Lo.Is6() && toU128(r.Hi).diff(toU128(r.Lo)) >= MaxIPv6Targets {
			return RangeSet{}, errTooWide(r)
		}
	}
	set := NewRangeSet(t.Include).Subtract(NewRangeSet(t.Exclude))
	if set.Len() == 0 {
		return RangeSet{}, fmt.Errorf("no targets left after --exclude")
	}
	if n := set.LenIPv6(); n > MaxIPv6Targets {
		return RangeSet{}, fmt.Errorf("the IPv6 targets hold %d addresses together; at most 2^32 (%d) can be swept: narrow them", n, uint64(MaxIPv6Targets))
	}
	allow := NewRangeSet(t.Allow)
	for _, b := range Blocklist {
		blocked := NewRangeSet([]Range{prefixRange(netip.MustParsePrefix(b.Prefix))}).Subtract(allow)
		if hit, ok := set.firstOverlap(blocked); ok {
			return RangeSet{}, fmt.Errorf("targets %s are in the built-in blocklist: %s is %s; "+
				"scan it only if it is yours, with --allow %s", hit, b.Prefix, b.Why, b.Prefix)
		}
	}
	return set, nil
}

func parseAddr(s, whole string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad address %q in %q: %v", strings.TrimSpace(s), whole, unwrapParse(err))
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q in %q has a zone: scan targets are global addresses", s, whole)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address: write the IPv4 form %s", s, a.Unmap())
	}
	return a, nil
}

func unwrapParse(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

func AddrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Index is the position of a in the set (At's inverse): At(Index(a)) == a.
// ok is false if a is not in the set. It allocates nothing, so a receive
// path may call it for every reply.
func (s RangeSet) Index(a netip.Addr) (i uint64, ok bool) {
	if a.Is4In6() || !a.IsValid() {
		// The set holds IPv4 in its mapped form; an IPv6 address that
		// looks the same is still not one of its targets.
		return 0, false
	}
	u := toU128(a)
	// k is the first span starting above u; the span holding u, if any, is
	// the one before it.
	k, found := slices.BinarySearchFunc(s.spans, u, func(r span, u u128) int { return r.lo.cmp(u) })
	if found {
		return s.cum[k], true
	}
	if k == 0 || s.spans[k-1].hi.cmp(u) < 0 {
		return 0, false
	}
	return s.cum[k-1] + u.diff(s.spans[k-1].lo), true
}
