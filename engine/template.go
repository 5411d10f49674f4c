package engine

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// SYN probe layout: Ethernet (14) + IPv4 without options (20) + TCP without
// options (20). Like masscan's, the SYN carries no TCP options.
const (
	synFrameLen = 14 + 20 + 20
	ipOff       = 14
	tcpOff      = 34
)

// SYNTemplate is one prebuilt frame per source port. Fill patches only the
// destination address, destination port and sequence number, and finishes
// both checksums from sums precomputed over the fixed fields.
type SYNTemplate struct {
	frame   [synFrameLen]byte
	ipSum   uint32 // IPv4 header sum without daddr
	tcpSum  uint32 // pseudo-header + TCP header sum without daddr, dport, seq
	src     [4]byte
	srcPort uint16
	cookie  CookieKey
	TTL     uint8
	IPID    uint16
	Window  uint16
}

// NewSYNTemplate builds the template for one source port.
func NewSYNTemplate(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, srcPort uint16, key CookieKey) *SYNTemplate {
	t := &SYNTemplate{src: src.As4(), srcPort: srcPort, cookie: key, TTL: 64, IPID: 54321, Window: 1024}
	f := t.frame[:]
	t.ipSum = putEthIPv4(f, srcMAC, dstMAC, t.src, ProtoTCP, 20, t.IPID, t.TTL)

	tcp := f[tcpOff:]
	binary.BigEndian.PutUint16(tcp[0:], srcPort)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], t.Window)
	pseudo := sum16(t.src[:], 0) + 6 + 20
	t.tcpSum = sum16(tcp, pseudo)
	return t
}

// Fill writes the probe to dst:dport into buf (at least 54 bytes) and
// returns its length. It allocates nothing.
func (t *SYNTemplate) Fill(buf []byte, dst uint32, dport uint16) int {
	buf = buf[:synFrameLen]
	copy(buf, t.frame[:])
	var d [4]byte
	binary.BigEndian.PutUint32(d[:], dst)
	seq := t.cookie.Cookie4(t.src, d, ProtoTCP, t.srcPort, dport)
	dsum := putDst(buf, t.ipSum, dst)

	binary.BigEndian.PutUint16(buf[tcpOff+2:], dport)
	binary.BigEndian.PutUint32(buf[tcpOff+4:], seq)
	s := t.tcpSum + dsum + uint32(dport) + seq>>16 + seq&0xffff
	binary.BigEndian.PutUint16(buf[tcpOff+16:], fold(s))
	return synFrameLen
}

// putEthIPv4 writes the Ethernet and option-less IPv4 headers of a frame
// whose IP payload is l4Len bytes, without the destination address, and
// returns the IPv4 header's checksum sum so far.
func putEthIPv4(f []byte, srcMAC, dstMAC net.HardwareAddr, src [4]byte, proto uint8, l4Len int, id uint16, ttl uint8) uint32 {
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[ipOff : ipOff+20]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4Len))
	binary.BigEndian.PutUint16(ip[4:], id)
	ip[8] = ttl
	ip[9] = proto
	copy(ip[12:16], src[:])
	return sum16(ip, 0)
}

// putDst writes the destination address and the finished IPv4 checksum, and
// returns the address's contribution to any pseudo-header sum.
func putDst(buf []byte, ipSum uint32, dst uint32) uint32 {
	binary.BigEndian.PutUint32(buf[ipOff+16:], dst)
	dsum := dst>>16 + dst&0xffff
	binary.BigEndian.PutUint16(buf[ipOff+10:], fold(ipSum+dsum))
	return dsum
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
