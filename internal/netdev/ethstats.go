package netdev

import (
	"fmt"
	"runtime"
	"slices"
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

// ReadEthtoolStats reads iface's driver name and private counters once
// (EthtoolReader).
func ReadEthtoolStats(iface string) (EthtoolStats, error) {
	r, err := OpenEthtoolStats(iface)
	if err != nil {
		return r.Stats, err
	}
	defer r.Close()
	v, err := r.Read()
	st := r.Stats
	st.Values = slices.Clone(v)
	return st, err
}

// EthtoolReader reads one interface's driver counters again and again
// with one ioctl and no allocation: for a transmitter that reads them
// after every call (transmit's refused XDP frames), as for a one-time
// reading. It uses the ETHTOOL_GDRVINFO, ETHTOOL_GSSET_INFO,
// ETHTOOL_GSTRINGS and ETHTOOL_GSTATS ioctls, which the kernel lets any
// user make (net/ethtool/ioctl.c lists them as unprivileged); the ethtool
// netlink family has no driver-private counters, only the standard
// groups.
type EthtoolReader struct {
	// Stats are the driver and the counters' names; Values is unset.
	Stats EthtoolStats
	fd    int
	iface string
	vals  []uint64 // ETHTOOL_GSTATS's header word, then room for the values
}

// OpenEthtoolStats reads iface's driver name and counter names. A driver
// without private counters gives a reader whose Read returns none. On an
// error the reader returned, closed, still says what was read (the
// driver's name, once known).
func OpenEthtoolStats(iface string) (*EthtoolReader, error) {
	r := &EthtoolReader{fd: -1, iface: iface}
	fail := func(format string, err error) (*EthtoolReader, error) {
		r.Close()
		return r, fmt.Errorf("ethtool stats of %s: "+format, iface, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket: %w", err)
	}
	r.fd = fd
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, iface)
	if err != nil {
		return fail("ETHTOOL_GDRVINFO: %w", err)
	}
	r.Stats.Driver = unix.ByteSliceToString(info.Driver[:])
	sset := struct {
		cmd, reserved uint32
		mask          uint64
		data          uint32
	}{cmd: unix.ETHTOOL_GSSET_INFO, mask: 1 << ethSSStats}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(&sset)); err != nil {
		return fail("ETHTOOL_GSSET_INFO: %w", err)
	}
	runtime.KeepAlive(&sset)
	if sset.mask == 0 || sset.data == 0 {
		return r, nil // the driver has no private counters
	}
	// The kernel asks the driver for the count again and writes that many
	// entries whatever length we pass: a queue added in between would write
	// past a buffer of exactly n. Room for twice as many, and a check.
	n := int(sset.data)
	room := 2*n + 64
	strs := make([]byte, 12+room*ethGStringLen)
	*(*[3]uint32)(unsafe.Pointer(&strs[0])) = [3]uint32{unix.ETHTOOL_GSTRINGS, ethSSStats, uint32(n)}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(&strs[0])); err != nil {
		return fail("ETHTOOL_GSTRINGS: %w", err)
	}
	ns := int(*(*uint32)(unsafe.Pointer(&strs[8])))
	if ns > room {
		return fail("%w", fmt.Errorf("the driver gave %d names for %d counters (its queues changed while they were read): read again", ns, n))
	}
	for i := range ns {
		r.Stats.Names = append(r.Stats.Names, unix.ByteSliceToString(strs[12+i*ethGStringLen:12+(i+1)*ethGStringLen]))
	}
	r.vals = make([]uint64, 1+room)
	return r, nil
}

// Read returns the counters' values, in Stats.Names' order, valid until
// the next Read. It fails when the driver's count changed since the names
// were read (its queues changed): open again.
func (r *EthtoolReader) Read() ([]uint64, error) {
	n := len(r.Stats.Names)
	if n == 0 {
		return nil, nil
	}
	*(*[2]uint32)(unsafe.Pointer(&r.vals[0])) = [2]uint32{unix.ETHTOOL_GSTATS, uint32(n)}
	if err := ethtoolIoctl(r.fd, r.iface, unsafe.Pointer(&r.vals[0])); err != nil {
		return nil, fmt.Errorf("ethtool stats of %s: ETHTOOL_GSTATS: %w", r.iface, err)
	}
	if nv := int((*[2]uint32)(unsafe.Pointer(&r.vals[0]))[1]); nv != n {
		return nil, fmt.Errorf("ethtool stats of %s: the driver gave %d values for %d names (its queues changed): read again", r.iface, nv, n)
	}
	return r.vals[1 : 1+n], nil
}

// Close closes the reader's socket.
func (r *EthtoolReader) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
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
