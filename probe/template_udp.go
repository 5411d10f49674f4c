package probe

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/xdpscan/xdpscan/targets"
)

// UDP is the prebuilt frame of one payload. Fill patches the
// destination address and port, the source port, the IP ID and the
// payload's cookie bits, and finishes the checksums from sums precomputed
// over the fixed fields.
type UDP struct {
	frame            []byte
	ip               ipHeader
	udpSum           uint32
	sportLo, sportHi uint16
	payload          *Payload
}

// NewUDP builds the frame carrying payload p; the family is src's.
func NewUDP(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, sportLo, sportHi uint16, p *Payload, key CookieKey) *UDP {
	l4Len := 8 + len(p.Data)
	t := &UDP{frame: make([]byte, ipOff+ipv6Len+l4Len), sportLo: sportLo, sportHi: sportHi, payload: p}
	t.ip = newIPHeader(t.frame, srcMAC, dstMAC, src, targets.ProtoUDP, l4Len, key)
	t.frame = t.frame[:t.ip.l4Off+l4Len]
	udp := t.frame[t.ip.l4Off:]
	binary.BigEndian.PutUint16(udp[4:], uint16(l4Len))
	copy(udp[8:], p.Data)
	// Pseudo-header (src, proto, length) and the UDP header and payload
	// with ports, checksum and cookie bits still zero.
	t.udpSum = t.ip.srcSum + uint32(targets.ProtoUDP) + uint32(l4Len) + sum16(udp, 0)
	return t
}

// Len is the frame's length.
func (t *UDP) Len() int { return len(t.frame) }

// Fill writes the probe to dst:dport into buf and returns its length. It
// allocates nothing.
func (t *UDP) Fill(buf []byte, dst netip.Addr, dport uint16) int {
	return t.fill(buf, dst, dport, 0)
}

// FillConfirm writes the confirming retry of the probe to dst:dport
// (--confirm): the same request under a fresh cookie, the hash of the
// tuple with 1 where the probe's has the source port 0, so an answer to the
// probe does not answer it nor the reverse.
func (t *UDP) FillConfirm(buf []byte, dst netip.Addr, dport uint16) int {
	return t.fill(buf, dst, dport, 1)
}

func (t *UDP) fill(buf []byte, dst netip.Addr, dport, salt uint16) int {
	buf = buf[:len(t.frame)]
	copy(buf, t.frame)
	h := t.ip.hash(dst, targets.ProtoUDP, salt, dport)
	sport := UDPSourcePort(uint32(h), t.sportLo, t.sportHi)
	if salt != 0 {
		// Never the probe's own port (probe_udp.h's udp_confirm_sport):
		// an answer that echoes nothing must still tell which it answers.
		if sport0 := UDPSourcePort(uint32(t.ip.hash(dst, targets.ProtoUDP, 0, dport)), t.sportLo, t.sportHi); sport == sport0 {
			if sport == t.sportHi {
				sport = t.sportLo
			} else {
				sport++
			}
		}
	}
	dsum := t.ip.putDst(buf, dst, IPID(h))
	udp := buf[t.ip.l4Off:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	s := t.udpSum + dsum + uint32(sport) + uint32(dport) + t.payload.stamp(udp[8:], h)
	sum := fold(s)
	if sum == 0 {
		sum = 0xffff // RFC 768: 0 means "no checksum"
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return len(buf)
}

// Echo is the ICMP (IPv4) or ICMPv6 echo request (--ping): 8 bytes
// with the cookie as identifier and sequence number, like zmap's.
type Echo struct {
	frame []byte
	ip    ipHeader
	proto uint8 // ProtoICMP or ProtoICMPv6: the cookie's protocol
	sum   uint32
}

// NewEcho builds the echo request frame; the family is src's.
func NewEcho(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, key CookieKey) *Echo {
	t := &Echo{frame: make([]byte, ipOff+ipv6Len+8), proto: targets.ProtoICMP}
	typ := uint8(8) // echo request
	if src.Is6() {
		t.proto, typ = targets.ProtoICMPv6, 128
	}
	t.ip = newIPHeader(t.frame, srcMAC, dstMAC, src, t.proto, 8, key)
	t.frame = t.frame[:t.ip.l4Off+8]
	t.frame[t.ip.l4Off] = typ
	t.sum = uint32(typ) << 8
	if t.ip.v6 {
		// ICMPv6's checksum covers a pseudo-header (RFC 4443); ICMP's does not.
		t.sum += t.ip.srcSum + uint32(targets.ProtoICMPv6) + 8
	}
	return t
}

// Len is the frame's length.
func (t *Echo) Len() int { return len(t.frame) }

// Fill writes the echo request to dst into buf and returns its length.
func (t *Echo) Fill(buf []byte, dst netip.Addr) int {
	buf = buf[:len(t.frame)]
	copy(buf, t.frame)
	h := t.ip.hash(dst, t.proto, 0, 0)
	c := uint32(h)
	dsum := t.ip.putDst(buf, dst, IPID(h))
	icmp := buf[t.ip.l4Off:]
	binary.BigEndian.PutUint32(icmp[4:], c) // identifier, sequence
	s := t.sum + c>>16 + c&0xffff
	if t.ip.v6 {
		s += dsum
	}
	binary.BigEndian.PutUint16(icmp[2:], fold(s))
	return len(buf)
}
