package capture

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethFlagRxVLAN is ETHTOOL_GFLAGS's ETH_FLAG_RXVLAN: the NIC takes the
// 802.1Q tag out of received frames (rx-vlan-offload, NETIF_F_HW_VLAN_CTAG_RX).
const (
	ethtoolGFlags = 0x25
	ethFlagRxVLAN = 1 << 8
)

// vlanStripNotice is what to tell the user when native XDP on iface
// cannot see VLAN tags: a NIC that strips them keeps the tag in its
// receive descriptor, which native XDP reads only through the driver's
// bpf_xdp_metadata_rx_vlan_tag (Linux 6.8, a device-bound program), and
// xdpscan does not load one. Such a frame reaches the filter untagged,
// so `vlan` misses it where tcpdump, which reads the kernel's metadata,
// matches. "" when nothing is lost: veth and generic mode see the tag in
// the frame, and so does a NIC with the offload off.
func vlanStripNotice(iface string) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, iface)
	if err != nil || unix.ByteSliceToString(info.Driver[:]) == "veth" {
		return "" // veth hands XDP the frame with its tag in place
	}
	value := struct{ cmd, data uint32 }{cmd: ethtoolGFlags}
	var req [40]byte // struct ifreq: the name, then ifr_data
	copy(req[:unix.IFNAMSIZ-1], iface)
	*(*uintptr)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = uintptr(unsafe.Pointer(&value))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		return ""
	}
	if value.data&ethFlagRxVLAN == 0 {
		return ""
	}
	return fmt.Sprintf("xdpscan: %s strips VLAN tags in the NIC (rx-vlan-offload on), and native XDP does not see a stripped tag: "+
		"'vlan' filters miss those frames and other filters see them untagged, where tcpdump sees the tag; "+
		"for tcpdump's view, turn the offload off (ethtool -K %s rxvlan off) or capture with --mode generic", iface, iface)
}
