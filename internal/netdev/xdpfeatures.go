package netdev

import (
	"encoding/binary"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The netdev generic netlink family (include/uapi/linux/netdev.h, Linux 6.3).
const (
	netdevCmdDevGet       = 1
	netdevAttrIfindex     = 1
	netdevAttrXDPFeatures = 3
	XDPActBasic           = 1 // NETDEV_XDP_ACT_BASIC: the driver runs XDP programs itself (native mode)
)

// XDPFeatures reads each interface's XDP features from the netdev family:
// ifindex to the feature bits. nil when the kernel has no such family. The
// dump is read here (a plain netlink socket, x/sys/unix's parsers):
// vishvananda/netlink's request returns only its first device.
func XDPFeatures() map[int]uint64 {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	req := make([]byte, unix.SizeofNlMsghdr+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], fam.ID)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1) // seq
	req[16], req[17] = netdevCmdDevGet, 1     // genlmsghdr: cmd, version
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil
	}
	out := map[int]uint64{}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return out
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return out
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR {
				return out
			}
			if len(m.Data) < 4 {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m.Data[4:])
			if err != nil {
				continue
			}
			var idx int
			var feat uint64
			for _, a := range attrs {
				switch {
				case a.Attr.Type == netdevAttrIfindex && len(a.Value) >= 4:
					idx = int(binary.NativeEndian.Uint32(a.Value))
				case a.Attr.Type == netdevAttrXDPFeatures && len(a.Value) >= 8:
					feat = binary.NativeEndian.Uint64(a.Value)
				}
			}
			if idx > 0 {
				out[idx] = feat
			}
		}
	}
}
