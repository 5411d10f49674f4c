package capture

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A TC egress program runs before the device's transmit path finishes a
// TCP or UDP checksum the stack left partial (CHECKSUM_PARTIAL: the field
// holds the pseudo-header's sum, the device or skb_checksum_help adds the
// rest). tcpdump's tap runs after that: on a device without checksum
// offload (the testbed's veth: `tx off`) it records the finished checksum,
// on one with offload the partial one. So on a device without offload the
// capture finishes partial checksums itself, as the kernel would, to write
// the bytes tcpdump writes; on a device with offload it leaves them, as
// tcpdump sees them. A TC program cannot tell a partial checksum
// (skb->ip_summed is not in __sk_buff, and reading struct sk_buff through
// BTF needs CAP_PERFMON), so a checksum counts as partial when it is wrong
// and equals the pseudo-header's folded sum: what Linux writes there
// (tcp_v4_send_check, udp6_set_csum...). A packet cut by the snaplen
// cannot be summed and keeps its field.

// txChecksumOffload reports whether iface offloads transmit checksums
// (ETHTOOL_GTXCSUM: any of the device's NETIF_F_CSUM_MASK features).
func txChecksumOffload(iface string) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	const ethtoolGTXCSUM = 0x16
	v := struct{ cmd, data uint32 }{cmd: ethtoolGTXCSUM}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], iface)
	ifr.data = unsafe.Pointer(&v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&v)
	if errno != 0 {
		return false, fmt.Errorf("ETHTOOL_GTXCSUM on %s: %w", iface, errno)
	}
	return v.data != 0, nil
}

// finishChecksum finishes frame's TCP or UDP checksum in place when it is
// partial (see above), for an untagged IPv4 packet that is not a fragment
// or an IPv6 packet whose first next header is TCP or UDP, captured whole
// (wireLen bytes). It reports whether it changed the frame.
func finishChecksum(frame []byte, wireLen int) bool {
	if len(frame) != wireLen || len(frame) < 14 {
		return false
	}
	be := binary.BigEndian
	var pseudo uint32
	var proto byte
	var l4 []byte
	switch be.Uint16(frame[12:]) {
	case 0x0800:
		ip := frame[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return false
		}
		ihl, total := int(ip[0]&0xf)*4, int(be.Uint16(ip[2:]))
		if ihl < 20 || total < ihl || total > len(ip) || be.Uint16(ip[6:])&0x3fff != 0 {
			return false
		}
		proto, l4 = ip[9], ip[ihl:total]
		pseudo = sum16(ip[12:20], 0)
	case 0x86dd:
		ip := frame[14:]
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return false
		}
		n := int(be.Uint16(ip[4:]))
		if 40+n > len(ip) {
			return false
		}
		proto, l4 = ip[6], ip[40:40+n]
		pseudo = sum16(ip[8:40], 0)
	default:
		return false
	}
	at := map[byte]int{6: 16, 17: 6}[proto]
	if at == 0 || len(l4) < at+2 || (proto == 17 && len(l4) < 8) || (proto == 6 && len(l4) < 20) {
		return false
	}
	pseudo += uint32(proto) + uint32(len(l4))
	if fold(sum16(l4, pseudo)) == 0xffff {
		return false // already right
	}
	stored := be.Uint16(l4[at:])
	if stored != fold(pseudo) {
		return false // wrong, but not what the stack leaves: as sent
	}
	be.PutUint16(l4[at:], 0)
	c := ^fold(sum16(l4, pseudo))
	if proto == 17 && c == 0 {
		c = 0xffff // UDP: 0 means "no checksum"
	}
	be.PutUint16(l4[at:], c)
	return true
}

// sum16 adds b as big-endian 16-bit words (an odd last byte padded with
// zero) to s.
func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold is s's ones'-complement 16-bit sum.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
