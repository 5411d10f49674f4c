package netdev

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EthtoolStats are a driver's private counters, as `ethtool -S` prints
// them: names and values in the driver's order.
type EthtoolStats struct {
	Driver string // ethtool -i's driver: veth, mlx5_core, virtio_net...
	Names  []string
	Values []uint64
}

// ReadEthtoolStats reads iface's driver name and private counters with the
// ETHTOOL_GDRVINFO, ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS and ETHTOOL_GSTATS
// ioctls. The kernel lets any user make these four (net/ethtool/ioctl.c
// lists them as unprivileged); the ethtool netlink family has no
// driver-private counters, only the standard groups.
func ReadEthtoolStats(iface string) (EthtoolStats, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return EthtoolStats{}, fmt.Errorf("ethtool stats of %s: socket: %w", iface, err)
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, iface)
	if err != nil {
		return EthtoolStats{}, fmt.Errorf("ethtool stats of %s: ETHTOOL_GDRVINFO: %w", iface, err)
	}
	st := EthtoolStats{Driver: unix.ByteSliceToString(info.Driver[:])}
	sset := struct {
		cmd, reserved uint32
		mask          uint64
		data          uint32
	}{cmd: unix.ETHTOOL_GSSET_INFO, mask: 1 << ethSSStats}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(&sset)); err != nil {
		return st, fmt.Errorf("ethtool stats of %s: ETHTOOL_GSSET_INFO: %w", iface, err)
	}
	runtime.KeepAlive(&sset)
	if sset.mask == 0 || sset.data == 0 {
		return st, nil // the driver has no private counters
	}
	// The kernel asks the driver for the count again and writes that many
	// entries whatever length we pass: a queue added in between would write
	// past a buffer of exactly n. Room for twice as many, and a check.
	n := int(sset.data)
	room := 2*n + 64
	strs := make([]byte, 12+room*ethGStringLen)
	*(*[3]uint32)(unsafe.Pointer(&strs[0])) = [3]uint32{unix.ETHTOOL_GSTRINGS, ethSSStats, uint32(n)}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(&strs[0])); err != nil {
		return st, fmt.Errorf("ethtool stats of %s: ETHTOOL_GSTRINGS: %w", iface, err)
	}
	ns := int(*(*uint32)(unsafe.Pointer(&strs[8])))
	vals := make([]uint64, 1+room)
	*(*[2]uint32)(unsafe.Pointer(&vals[0])) = [2]uint32{unix.ETHTOOL_GSTATS, uint32(n)}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(&vals[0])); err != nil {
		return st, fmt.Errorf("ethtool stats of %s: ETHTOOL_GSTATS: %w", iface, err)
	}
	nv := int((*[2]uint32)(unsafe.Pointer(&vals[0]))[1])
	if ns != nv || ns > room {
		return st, fmt.Errorf("ethtool stats of %s: the driver gave %d names and %d values (its queues changed while they were read): read again", iface, ns, nv)
	}
	for i := range ns {
		st.Names = append(st.Names, unix.ByteSliceToString(strs[12+i*ethGStringLen:12+(i+1)*ethGStringLen]))
	}
	st.Values = vals[1 : 1+nv]
	return st, nil
}

// ethtoolIoctl makes one SIOCETHTOOL request for iface with data.
func ethtoolIoctl(fd int, iface string, data unsafe.Pointer) error {
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	if len(iface) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q is longer than %d bytes", iface, unix.IFNAMSIZ-1)
	}
	copy(ifr.name[:], iface)
	ifr.data = data
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(data)
	if errno != 0 {
		return errno
	}
	return nil
}

// include/uapi/linux/ethtool.h
const (
	ethSSStats    = 1  // ETH_SS_STATS: the names of ETHTOOL_GSTATS's counters
	ethGStringLen = 32 // ETH_GSTRING_LEN
)
