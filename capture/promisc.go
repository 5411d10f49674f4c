package capture

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"
)

// Promisc holds an interface in promiscuous mode the way tcpdump does: a
// PACKET_MR_PROMISC membership on a packet socket. The kernel counts
// memberships (ip -d link's "promiscuity") and drops this one when the
// socket closes, whatever ends the process, SIGKILL included: a crash
// never leaves the interface promiscuous. The socket's protocol is 0, so
// it is on no receive path and copies no packet.
type Promisc struct{ fd int }

// EnterPromisc makes iface promiscuous until Close. It needs CAP_NET_RAW
// (a packet socket).
func EnterPromisc(iface string) (*Promisc, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("promiscuous mode on %s: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("promiscuous mode on %s: packet socket: %w", iface, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifc.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("promiscuous mode on %s: %w", iface, err)
	}
	return &Promisc{fd: fd}, nil
}

// Close leaves promiscuous mode (the kernel drops the membership).
func (p *Promisc) Close() error {
	if p == nil || p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	return err
}

// NotPromiscFilter wraps expr so that it matches only frames this host's
// interface would take without promiscuous mode (to its MAC, broadcast or
// multicast) and the frames it sends. A NIC drops the others in hardware before XDP sees them; a
// software device (veth, a bridge port) hands XDP every frame, so -p
// applies the same rule in the filter.
func NotPromiscFilter(iface, expr string) (string, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return "", fmt.Errorf("-p: %s: %w", iface, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return expr, nil // no Ethernet address: nothing to compare
	}
	// "ether src" keeps what the interface sends (-Q out and inout share
	// the filter), which a received frame never carries.
	own := fmt.Sprintf("(ether dst %s or ether src %s or ether multicast)", ifc.HardwareAddr, ifc.HardwareAddr)
	if strings.TrimSpace(expr) == "" {
		return own, nil
	}
	return own + " and (" + expr + ")", nil
}
