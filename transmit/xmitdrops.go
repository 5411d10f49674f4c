package transmit

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xmitDrops reads, with one ETHTOOL_GSTATS ioctl, a driver's count of the
// frames its ndo_xdp_xmit refused: on veth the tx_queue_N_xdp_xmit_errors
// of every queue, the frames the peer's 256-slot receive rings had no room
// for (drivers/net/veth.c, veth_xdp_xmit). The kernel frees a refused
// frame and tells BPF_PROG_RUN's caller nothing, so a count read after
// every call is the only sign that a call lost frames. Having these
// counters says the driver counts refusals at all; the count read after
// every call is sysfs's tx_dropped where /sys is this namespace's
// (sysfsdrops.go: the ioctl takes the RTNL lock and a vmalloc), these
// counters otherwise.
type xmitDrops struct {
	fd   int
	ifr  ifreqData
	buf  []byte // struct ethtool_stats, then its numbers: statsBytes, then a guard page
	idx  []int  // the counters summed
	want int    // the driver's n_stats when the names were read
}

// ifreqData is struct ifreq with its ifr_data member (40 bytes on 64-bit).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// vethXmitErrors names veth's per-queue refused-frame counters.
var vethXmitErrors = regexp.MustCompile(`^tx_queue_[0-9]+_xdp_xmit_errors$`)

// ethSSStats is ETH_SS_STATS and ethGStringLen ETH_GSTRING_LEN
// (include/uapi/linux/ethtool.h).
const (
	ethSSStats    = 1
	ethGStringLen = 32
)

// openXmitDrops opens the counters of iface in the current network
// namespace that match names. It fails when the driver has none (the
// frames it refuses cannot be told apart then). ETHTOOL_GSTATS and
// ETHTOOL_GSTRINGS need no capability.
func openXmitDrops(iface string, names *regexp.Regexp) (*xmitDrops, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read the ethtool counters of %s: %w", iface, err)
	}
	d := &xmitDrops{fd: fd}
	copy(d.ifr.name[:unix.IFNAMSIZ-1], iface)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, iface)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("read the ethtool counters of %s: %w", iface, err)
	}
	n := int(info.N_stats)
	strs := make([]byte, 12+n*ethGStringLen)
	binary.NativeEndian.PutUint32(strs[0:], unix.ETHTOOL_GSTRINGS)
	binary.NativeEndian.PutUint32(strs[4:], ethSSStats)
	binary.NativeEndian.PutUint32(strs[8:], uint32(n))
	if err := d.ioctl(strs); err != nil {
		d.Close()
		return nil, fmt.Errorf("read the ethtool counter names of %s: %w", iface, err)
	}
	for i := 0; i < n; i++ {
		s := strs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if end := indexByte(s, 0); end >= 0 {
			s = s[:end]
		}
		if names.Match(s) {
			d.idx = append(d.idx, i)
		}
	}
	if len(d.idx) == 0 {
		d.Close()
		return nil, fmt.Errorf("%s counts no refused XDP frames in ethtool -S", iface)
	}
	// The kernel writes as many numbers as the driver has now, whatever
	// the caller's buffer holds (net/ethtool/ioctl.c, ethtool_get_stats),
	// so a queue count raised during the scan would write past a buffer
	// sized for today's. The buffer is an untouched mapping far larger
	// than any driver's counters, ended by a page the kernel cannot
	// write: a count past it fails the call with EFAULT.
	d.want = n
	page := unix.Getpagesize()
	b, err := unix.Mmap(-1, 0, statsBytes+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("read the ethtool counters of %s: %w", iface, err)
	}
	if err := unix.Mprotect(b[statsBytes:], unix.PROT_NONE); err != nil {
		unix.Munmap(b)
		d.Close()
		return nil, fmt.Errorf("read the ethtool counters of %s: %w", iface, err)
	}
	d.buf = b
	if _, err := d.Sum(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (d *xmitDrops) ioctl(buf []byte) error {
	d.ifr.data = unsafe.Pointer(&buf[0])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&d.ifr)))
	d.ifr.data = nil
	if errno != 0 {
		return errno
	}
	return nil
}

// Sum is the refused frames so far, over every queue.
func (d *xmitDrops) Sum() (uint64, error) {
	binary.NativeEndian.PutUint32(d.buf[0:], unix.ETHTOOL_GSTATS)
	binary.NativeEndian.PutUint32(d.buf[4:], uint32(d.want))
	if err := d.ioctl(d.buf); err != nil {
		return 0, fmt.Errorf("read the ethtool counters: %w", err)
	}
	if got := int(binary.NativeEndian.Uint32(d.buf[4:])); got != d.want {
		return 0, fmt.Errorf("the interface's ethtool counters changed from %d to %d (its queues changed)", d.want, got)
	}
	var sum uint64
	for _, i := range d.idx {
		sum += binary.NativeEndian.Uint64(d.buf[8+8*i:])
	}
	return sum, nil
}

// statsBytes holds 131,071 counters (veth's most, 4,096 queues, is 36,865).
const statsBytes = 1 << 20

// Close closes the socket and unmaps the buffer.
func (d *xmitDrops) Close() error {
	if d.buf != nil {
		unix.Munmap(d.buf)
		d.buf = nil
	}
	return unix.Close(d.fd)
}
