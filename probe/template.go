package probe

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/targets"
)

// Probe frame layout: Ethernet (14), then IPv4 without options (20) or IPv6
// without extension headers (40), then the L4 header at l4Off.
const (
	ipOff     = 14
	ipv4Len   = 20
	ipv6Len   = 40
	tcpHdrLen = 20
)

// ipHeader is the fixed Ethernet and IP part of a probe frame, of either
// family. Templates write it once; Fill patches only the destination.
type ipHeader struct {
	v6      bool
	l4Off   int
	ipSum   uint32 // IPv4: the header's checksum sum without the destination
	src4    [4]byte
	src6    [16]byte
	srcSum  uint32 // the source address's share of the pseudo-header sum
	cookies CookieKey
}

// newIPHeader writes the Ethernet and IP headers of a frame from src whose
// IP payload is l4Len bytes of proto, without the destination address.
func newIPHeader(f []byte, srcMAC, dstMAC net.HardwareAddr, src netip.Addr, proto uint8, l4Len int, key CookieKey) ipHeader {
	h := ipHeader{v6: src.Is6(), cookies: key}
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	if h.v6 {
		h.l4Off = ipOff + ipv6Len
		h.src6 = src.As16()
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		ip := f[ipOff : ipOff+ipv6Len]
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(l4Len))
		ip[6] = proto
		ip[7] = 64 // hop limit
		copy(ip[8:24], h.src6[:])
		h.srcSum = sum16(h.src6[:], 0)
		return h
	}
	h.l4Off = ipOff + ipv4Len
	h.src4 = src.As4()
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[ipOff : ipOff+ipv4Len]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Len+l4Len))
	// The IP ID (ip[4:6]) is cookie bits, written by putDst: an ICMP error
	// quotes it.
	ip[8] = 64 // TTL
	ip[9] = proto
	copy(ip[12:16], h.src4[:])
	h.ipSum = sum16(ip, 0)
	h.srcSum = sum16(h.src4[:], 0)
	return h
}

// putDst writes the destination address and id (IPv4's IP ID, with the
// finished header checksum; IPv6's flow label) and returns the address's share of the pseudo-header
// sum.
func (h *ipHeader) putDst(buf []byte, dst netip.Addr, id uint16) uint32 {
	if h.v6 {
		d := dst.As16()
		// The flow label's low 16 bits carry the cookie bits IPv4 puts
		// in the ID: an ICMPv6 error quotes them (RFC 6437: unchanged
		// on the way). Not in any checksum.
		binary.BigEndian.PutUint16(buf[ipOff+2:], id)
		copy(buf[ipOff+24:ipOff+40], d[:])
		return sum16(d[:], 0)
	}
	d := dst.As4()
	copy(buf[ipOff+16:ipOff+20], d[:])
	dsum := sum16(d[:], 0)
	binary.BigEndian.PutUint16(buf[ipOff+4:], id)
	binary.BigEndian.PutUint16(buf[ipOff+10:], fold(h.ipSum+dsum+uint32(id)))
	return dsum
}

// hash is the probe's keyed hash (bpf/include/scan_reply.h's probe_cookie): the cookie
// in its low 32 bits.
func (h *ipHeader) hash(dst netip.Addr, proto uint8, sport, dport uint16) uint64 {
	// CookieKey.Hash, with the source's bytes taken once per template
	// rather than once per probe: this is the send path's hot loop.
	if h.v6 {
		return h.cookies.Hash6(h.src6, dst.As16(), proto, sport, dport)
	}
	return h.cookies.Hash4(h.src4, dst.As4(), proto, sport, dport)
}

// SYN is one prebuilt SYN frame per source port. Fill patches only
// the destination address, destination port and sequence number, and
// finishes the checksums from sums precomputed over the fixed fields. Like
// masscan's, the SYN carries no TCP options.
type SYN struct {
	frame   []byte
	ip      ipHeader
	tcpSum  uint32 // pseudo-header without daddr + TCP header without dport, seq
	srcPort uint16
}

// NewSYN builds the template for one source port; the family is
// src's.
func NewSYN(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, srcPort uint16, key CookieKey) *SYN {
	t := &SYN{srcPort: srcPort}
	t.frame = make([]byte, ipOff+ipv6Len+tcpHdrLen)
	t.ip = newIPHeader(t.frame, srcMAC, dstMAC, src, targets.ProtoTCP, tcpHdrLen, key)
	t.frame = t.frame[:t.ip.l4Off+tcpHdrLen]
	tcp := t.frame[t.ip.l4Off:]
	binary.BigEndian.PutUint16(tcp[0:], srcPort)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 1024)
	t.tcpSum = sum16(tcp, t.ip.srcSum+uint32(targets.ProtoTCP)+tcpHdrLen)
	return t
}

// Len is the frame's length: 54 bytes (IPv4) or 74 (IPv6).
func (t *SYN) Len() int { return len(t.frame) }

// Fill writes the probe to dst:dport into buf (at least Len bytes) and
// returns its length. It allocates nothing.
func (t *SYN) Fill(buf []byte, dst netip.Addr, dport uint16) int {
	buf = buf[:len(t.frame)]
	copy(buf, t.frame)
	h := t.ip.hash(dst, targets.ProtoTCP, t.srcPort, dport)
	seq := uint32(h)
	dsum := t.ip.putDst(buf, dst, IPID(h))
	tcp := buf[t.ip.l4Off:]
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	s := t.tcpSum + dsum + uint32(dport) + seq>>16 + seq&0xffff
	binary.BigEndian.PutUint16(tcp[16:], fold(s))
	return len(buf)
}

// sum16 adds b as big-endian 16-bit words to sum (RFC 1071).
func sum16(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// MaxFrame is the largest probe frame: the longest UDP payload fits. It is
// the transmitter's frame size in the kernel (loader.SendFrame, SEND_FRAME
// in bpf/include/send.h), so every probe fits either transmitter.
const MaxFrame = loader.SendFrame
