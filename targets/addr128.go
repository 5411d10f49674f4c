package targets

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address as a 128-bit number: IPv6 as is, IPv4 as its mapped
// form ::ffff:a.b.c.d, so one sorted set holds both families apart.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	b := a.As16() // IPv4 comes out mapped
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) bytes() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return b
}

func (u u128) addr() netip.Addr { return netip.AddrFrom16(u.bytes()).Unmap() }

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) add(n uint64) u128 {
	lo, carry := bits.Add64(u.lo, n, 0)
	return u128{u.hi + carry, lo}
}

func (u u128) sub1() u128 {
	lo, borrow := bits.Sub64(u.lo, 1, 0)
	return u128{u.hi - borrow, lo}
}

// diff is u - v for u >= v, saturated at 2^64-1.
func (u u128) diff(v u128) uint64 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	if u.hi-v.hi-borrow != 0 {
		return ^uint64(0)
	}
	return lo
}

var maxU128 = u128{^uint64(0), ^uint64(0)}

// isV4 says whether u lies in ::ffff:0:0/96, where IPv4 addresses live.
func (u u128) isV4() bool { return u.hi == 0 && u.lo>>32 == 0xffff }
