package probe

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
)

// CookieKey is the SipHash-2-4 key of the probe cookie. A scan draws a fresh
// one, so replies to an earlier scan (or to anyone else) do not validate.
type CookieKey [2]uint64

// NewCookieKey draws a random key.
func NewCookieKey() (CookieKey, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return CookieKey{}, fmt.Errorf("draw cookie key: %w", err)
	}
	return CookieKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}, nil
}

// Cookie4 is the cookie of an IPv4 probe with the given tuple, as sent
// (src = us). It is the same function as probe_cookie() in bpf/include/scan_reply.h: the
// SipHash-2-4 of two words, the addresses (src high, dst low, as numbers)
// and proto<<32 | sport<<16 | dport.
func (k CookieKey) Cookie4(src, dst [4]byte, proto uint8, sport, dport uint16) uint32 {
	return uint32(k.Hash4(src, dst, proto, sport, dport))
}

// Hash4 is the whole 64-bit keyed hash whose low 32 bits are Cookie4: the
// high 32 give the shares below (IPID, DNSID, SNMPID), so an answer that
// echoes them proves more than 32 bits.
func (k CookieKey) Hash4(src, dst [4]byte, proto uint8, sport, dport uint16) uint64 {
	m := [5]uint64{
		uint64(binary.BigEndian.Uint32(src[:]))<<32 | uint64(binary.BigEndian.Uint32(dst[:])),
		portsWord(proto, sport, dport),
	}
	return sipHash24Words(k[0], k[1], &m, 2)
}

// Cookie6 is Cookie4 for IPv6: five words, src and dst as two big-endian
// words each, then the ports word.
func (k CookieKey) Cookie6(src, dst [16]byte, proto uint8, sport, dport uint16) uint32 {
	return uint32(k.Hash6(src, dst, proto, sport, dport))
}

// Hash6 is Hash4 for IPv6.
func (k CookieKey) Hash6(src, dst [16]byte, proto uint8, sport, dport uint16) uint64 {
	m := [5]uint64{
		binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:]),
		binary.BigEndian.Uint64(dst[:8]), binary.BigEndian.Uint64(dst[8:]),
		portsWord(proto, sport, dport),
	}
	return sipHash24Words(k[0], k[1], &m, 5)
}

// Cookie is the cookie of a probe from src to dst: Cookie6 to an IPv6
// target, else Cookie4 (src is of the target's family).
func (k CookieKey) Cookie(src, dst netip.Addr, proto uint8, sport, dport uint16) uint32 {
	if dst.Is6() {
		return k.Cookie6(src.As16(), dst.As16(), proto, sport, dport)
	}
	return k.Cookie4(src.As4(), dst.As4(), proto, sport, dport)
}

// Hash is Cookie's 64-bit hash (Hash4 or Hash6).
func (k CookieKey) Hash(src, dst netip.Addr, proto uint8, sport, dport uint16) uint64 {
	if dst.Is6() {
		return k.Hash6(src.As16(), dst.As16(), proto, sport, dport)
	}
	return k.Hash4(src.As4(), dst.As4(), proto, sport, dport)
}

// The shares of a probe's hash h, each the twin of the C function of the
// same name (bpf/include/scan_reply.h, probe_udp.h). The low 32 bits are
// the cookie (TCP sequence, echo id:seq, UDP source port).

// IPID is every IPv4 probe's IP ID, and the low 16 bits of every IPv6
// probe's flow label: an ICMP or ICMPv6 error quotes it.
func IPID(h uint64) uint16 { return uint16(h >> 32) }

// DNSID is a DNS probe's transaction ID.
func DNSID(h uint64) uint16 { return uint16(h >> 48) }

// DNSCase says, bit i for letter i of "version.bind", which letters of a
// DNS probe's name are lower case (0x20 set).
func DNSCase(h uint64) uint32 { return uint32(h) >> 8 & 0x7ff }

// SNMPID is an SNMP probe's request-id: 30 bits under a top byte of
// 0x40-0x7f, so BER encodes it in exactly 4 bytes.
func SNMPID(h uint64) uint32 { return uint32(h>>32)&0x3fffffff | 0x40000000 }

func portsWord(proto uint8, sport, dport uint16) uint64 {
	return uint64(proto)<<32 | uint64(sport)<<16 | uint64(dport)
}

// sipHash24Words is SipHash-2-4 of the little-endian bytes of m[:n]. It takes
// an array pointer, not a slice, so calls do not allocate.
func sipHash24Words(k0, k1 uint64, m *[5]uint64, n int) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	for i := 0; i < n; i++ {
		v3 ^= m[i]
		round()
		round()
		v0 ^= m[i]
	}
	b := uint64(n*8) << 56
	v3 ^= b
	round()
	round()
	v0 ^= b
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
