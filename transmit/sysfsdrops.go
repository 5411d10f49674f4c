package transmit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// refusedCounter is a count that grows by at least every frame the
// driver refuses, read after every transmitter call.
type refusedCounter interface {
	Sum() (uint64, error)
	Close() error
}

// sysfsDropped reads the interface's tx_dropped from sysfs: one pread of
// an open file, under RCU only. veth adds its peer queues' refused frames
// (peer_tq_xdp_xmit_err) to tx_dropped (veth_get_stats64), with its own
// XDP_TX failures and the core's drops: a count that grows for other
// reasons sends a call again needlessly (a duplicate probe), never misses
// a refusal. ETHTOOL_GSTATS, read after every call before, takes the RTNL
// lock and allocates and frees a vmalloc buffer each time: 2.7% of a
// scan's perf samples, and every `ip` command on the host stalled the
// sender for as long as it held the lock.
type sysfsDropped struct {
	fd  int
	buf [32]byte
}

// openSysfsDropped opens iface's tx_dropped if /sys shows this network
// namespace's iface: its ifindex and address must be the link's (under
// `ip netns exec` /sys is the namespace's; a process that entered the
// namespace some other way sees another's, and gets an error).
func openSysfsDropped(iface string, ifindex int, mac net.HardwareAddr) (*sysfsDropped, error) {
	dir := "/sys/class/net/" + iface + "/"
	idx, err := os.ReadFile(dir + "ifindex")
	if err != nil {
		return nil, err
	}
	addr, err := os.ReadFile(dir + "address")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(idx)) != strconv.Itoa(ifindex) || !sameMAC(strings.TrimSpace(string(addr)), mac) {
		return nil, fmt.Errorf("/sys shows another namespace's %s", iface)
	}
	fd, err := unix.Open(dir+"statistics/tx_dropped", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &sysfsDropped{fd: fd}
	if _, err := d.Sum(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// sameMAC says whether sysfs's address is mac (an interface without one,
// like lo, shows zeros there and none in netlink).
func sameMAC(sysfs string, mac net.HardwareAddr) bool {
	got, err := net.ParseMAC(sysfs)
	if err != nil {
		return false
	}
	if len(mac) == 0 {
		return bytes.Count(got, []byte{0}) == len(got)
	}
	return bytes.Equal(got, mac)
}

// Sum is the interface's tx_dropped now.
func (d *sysfsDropped) Sum() (uint64, error) {
	n, err := unix.Pread(d.fd, d.buf[:], 0)
	if err != nil {
		return 0, fmt.Errorf("read tx_dropped: %w", err)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(d.buf[:n])), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read tx_dropped %q: %w", d.buf[:n], err)
	}
	return v, nil
}

func (d *sysfsDropped) Close() error { return unix.Close(d.fd) }
