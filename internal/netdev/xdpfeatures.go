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
	// NETDEV_A_DEV_XDP_RX_METADATA_FEATURES (Linux 6.3): which
	// bpf_xdp_metadata_rx_* kfuncs the driver implements.
	netdevAttrXDPRxMetadata = 5
	XDPActBasic             = 1 // NETDEV_XDP_ACT_BASIC: the driver runs XDP programs itself (native mode)
	// XDPRxMetadataVLANTag is NETDEV_XDP_RX_METADATA_VLAN_TAG (Linux
	// 6.8): the driver gives bpf_xdp_metadata_rx_vlan_tag the tag it took
	// out of a received frame.
	XDPRxMetadataVLANTag = 4
)

// Features are an interface's XDP feature bits from the netdev family.
type Features struct {
	XDP        uint64 // NETDEV_XDP_ACT_*
	RxMetadata uint64 // NETDEV_XDP_RX_METADATA_*
}

// XDPFeatures reads each interface's XDP features from the netdev family:
// ifindex to the feature bits. nil when the kernel has no such family. The
// dump is read here (a plain netlink socket, x/sys/unix's parsers):
// vishvananda/netlink's request returns only its first device.
func XDPFeatures() map[int]uint64 {
	all := DeviceFeatures()
	if all == nil {
		return nil
	}
	out := make(map[int]uint64, len(all))
	for idx, f := range all {
		out[idx] = f.XDP
	}
	return out
}

// DeviceFeatures reads each interface's feature bits from the netdev
// family, by ifindex; nil when the kernel has no such family.
func DeviceFeatures() map[int]Features {
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
	out := map[int]Features{}
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
			var feat Features
			for _, a := range attrs {
				switch {
				case a.Attr.Type == netdevAttrIfindex && len(a.Value) >= 4:
					idx = int(binary.NativeEndian.Uint32(a.Value))
				case a.Attr.Type == netdevAttrXDPFeatures && len(a.Value) >= 8:
					feat.XDP = binary.NativeEndian.Uint64(a.Value)
				case a.Attr.Type == netdevAttrXDPRxMetadata && len(a.Value) >= 8:
					feat.RxMetadata = binary.NativeEndian.Uint64(a.Value)
				}
			}
			if idx > 0 {
				out[idx] = feat
			}
		}
	}
}
