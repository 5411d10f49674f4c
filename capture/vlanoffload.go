package capture

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// ethFlagRxVLAN is ETHTOOL_GFLAGS's ETH_FLAG_RXVLAN: the NIC takes the
// 802.1Q tag out of received frames (rx-vlan-offload, NETIF_F_HW_VLAN_CTAG_RX).
const (
	ethtoolGFlags = 0x25
	ethFlagRxVLAN = 1 << 8
)

// vlanMetaIfindex is iface's index when its capture program should be
// bound to it to get the outer VLAN tags its driver takes out of frames
// before XDP (loader.CaptureConfig.VLANMetaIfindex): native mode (asked,
// or what auto gives on a driver with native XDP; auto takes generic on
// veth, see loader.ModeAuto) on a driver that implements
// bpf_xdp_metadata_rx_vlan_tag (netdev's rx metadata features: veth and
// mlx5 do, on Linux 6.8). Else 0.
func vlanMetaIfindex(iface string, mode loader.Mode) int {
	if iface == "" || mode == loader.ModeGeneric || mode == loader.ModeAuto && netdev.IsVeth(iface) {
		return 0
	}
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return 0
	}
	f, ok := netdev.DeviceFeatures()[ifc.Index]
	if !ok || f.RxMetadata&netdev.XDPRxMetadataVLANTag == 0 || f.XDP&netdev.XDPActBasic == 0 {
		return 0
	}
	return ifc.Index
}

// vlanStripNotice is what to tell the user when XDP on iface, attached
// in mode, cannot see VLAN tags the NIC takes out of frames
// (rx-vlan-offload): the tag is in the receive descriptor, then the skb's
// metadata, which tcpdump reads and XDP does not, except through the
// driver's bpf_xdp_metadata_rx_vlan_tag in native mode (meta: the program
// does that). Such a frame reaches the filter untagged, so `vlan` misses
// it where tcpdump matches. "" when nothing is lost: meta; the offload
// off; or veth, which hands XDP a frame sent with its tag in place as it
// was sent (a tag its peer's sender kept in metadata is another matter:
// native mode reads it through the kfunc, generic mode cannot).
func vlanStripNotice(iface string, mode loader.Mode, meta bool) string {
	if meta || !rxVLANOffload(iface) {
		return ""
	}
	veth := netdev.IsVeth(iface)
	switch {
	case mode == loader.ModeNative && !veth:
		return fmt.Sprintf("xdpscan: %s strips VLAN tags in the NIC (rx-vlan-offload on) and its driver does not give them to XDP "+
			"(bpf_xdp_metadata_rx_vlan_tag, Linux 6.8): 'vlan' filters miss those frames and other filters see them untagged, where tcpdump sees the tag; "+
			"for tcpdump's view, turn the offload off (ethtool -K %s rxvlan off)", iface, iface)
	case mode == loader.ModeNative:
		return fmt.Sprintf("xdpscan: this kernel gives native XDP on %s no VLAN tag its peer's sender kept out of the frame "+
			"(bpf_xdp_metadata_rx_vlan_tag: Linux 6.8): such frames are seen untagged, where tcpdump sees the tag", iface)
	case !veth:
		return fmt.Sprintf("xdpscan: %s strips VLAN tags in the NIC (rx-vlan-offload on), and generic XDP runs after that: "+
			"'vlan' filters miss those frames and other filters see them untagged, where tcpdump sees the tag; "+
			"for tcpdump's view, --mode native (where the driver gives XDP the tag) or turn the offload off (ethtool -K %s rxvlan off)", iface, iface)
	}
	return ""
}

// rxVLANOffload says whether iface's NIC takes VLAN tags out of received
// frames (ETHTOOL_GFLAGS), false when it cannot tell.
func rxVLANOffload(iface string) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: ethtoolGFlags}
	var req [40]byte // struct ifreq: the name, then ifr_data
	copy(req[:unix.IFNAMSIZ-1], iface)
	*(*uintptr)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = uintptr(unsafe.Pointer(&value))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		return false
	}
	return value.data&ethFlagRxVLAN != 0
}
