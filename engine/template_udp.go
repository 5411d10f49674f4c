package engine

import (
	"encoding/binary"
	"net"
	"net/netip"
)

const udpOff = ipOff + 20

// UDPTemplate is the prebuilt frame of one payload. Fill patches the
// destination address and port, the source port and the cookie bytes, and
// finishes both checksums from sums precomputed over the fixed fields.
type UDPTemplate struct {
	frame            []byte
	ipSum, udpSum    uint32
	src              [4]byte
	sportLo, sportHi uint16
	cookieAt         int // frame offset of the cookie bytes; -1: none
	cookieLen        int
	cookie           CookieKey
}

// NewUDPTemplate builds the frame carrying payload p.
func NewUDPTemplate(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, sportLo, sportHi uint16, p *UDPPayload, key CookieKey) *UDPTemplate {
	l4Len := 8 + len(p.Data)
	t := &UDPTemplate{frame: make([]byte, udpOff+l4Len), src: src.As4(), sportLo: sportLo, sportHi: sportHi,
		cookieAt: -1, cookieLen: p.CookieLen, cookie: key}
	f := t.frame
	t.ipSum = putEthIPv4(f, srcMAC, dstMAC, t.src, ProtoUDP, l4Len, 54321, 64)
	binary.BigEndian.PutUint16(f[udpOff+4:], uint16(l4Len))
	copy(f[udpOff+8:], p.Data)
	if p.CookieLen > 0 {
		t.cookieAt = udpOff + 8 + p.CookieAt
		clear(f[t.cookieAt : t.cookieAt+p.CookieLen])
	}
	// Pseudo-header (src, proto, length) and the UDP header and payload
	// with ports, checksum and cookie bytes still zero.
	t.udpSum = sum16(t.src[:], 0) + uint32(ProtoUDP) + uint32(l4Len) + sum16(f[udpOff:], 0)
	return t
}

// Len is the frame's length.
func (t *UDPTemplate) Len() int { return len(t.frame) }

// Fill writes the probe to dst:dport into buf and returns its length. It
// allocates nothing.
func (t *UDPTemplate) Fill(buf []byte, dst uint32, dport uint16) int {
	buf = buf[:len(t.frame)]
	copy(buf, t.frame)
	var d [4]byte
	binary.BigEndian.PutUint32(d[:], dst)
	c := t.cookie.Cookie4(t.src, d, ProtoUDP, 0, dport)
	sport := udpSourcePort(c, t.sportLo, t.sportHi)
	dsum := putDst(buf, t.ipSum, dst)
	binary.BigEndian.PutUint16(buf[udpOff:], sport)
	binary.BigEndian.PutUint16(buf[udpOff+2:], dport)
	s := t.udpSum + dsum + uint32(sport) + uint32(dport)
	if t.cookieAt >= 0 {
		var cb [4]byte
		binary.BigEndian.PutUint32(cb[:], c)
		for i, b := range cb[4-t.cookieLen:] {
			at := t.cookieAt + i
			buf[at] = b
			// Checksum words are aligned to the UDP header's start.
			if (at-udpOff)%2 == 0 {
				s += uint32(b) << 8
			} else {
				s += uint32(b)
			}
		}
	}
	sum := fold(s)
	if sum == 0 {
		sum = 0xffff // RFC 768: 0 means "no checksum"
	}
	binary.BigEndian.PutUint16(buf[udpOff+6:], sum)
	return len(t.frame)
}

// EchoTemplate is the ICMP echo request (--ping): 8 bytes of ICMP with the
// cookie as identifier and sequence number, like zmap's.
type EchoTemplate struct {
	frame  [udpOff + 8]byte
	ipSum  uint32
	src    [4]byte
	cookie CookieKey
}

// NewEchoTemplate builds the echo request frame.
func NewEchoTemplate(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, key CookieKey) *EchoTemplate {
	t := &EchoTemplate{src: src.As4(), cookie: key}
	t.ipSum = putEthIPv4(t.frame[:], srcMAC, dstMAC, t.src, ProtoICMP, 8, 54321, 64)
	t.frame[udpOff] = 8 // echo request, code 0
	return t
}

// Fill writes the echo request to dst into buf and returns its length.
func (t *EchoTemplate) Fill(buf []byte, dst uint32) int {
	buf = buf[:len(t.frame)]
	copy(buf, t.frame[:])
	var d [4]byte
	binary.BigEndian.PutUint32(d[:], dst)
	c := t.cookie.Cookie4(t.src, d, ProtoICMP, 0, 0)
	putDst(buf, t.ipSum, dst)
	binary.BigEndian.PutUint32(buf[udpOff+4:], c) // identifier, sequence
	binary.BigEndian.PutUint16(buf[udpOff+2:], fold(8<<8+c>>16+c&0xffff))
	return len(t.frame)
}
