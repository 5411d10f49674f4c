package transmit

import (
	"fmt"
	"regexp"

	"github.com/xdpscan/xdpscan/internal/netdev"
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
	r   *netdev.EthtoolReader
	idx []int // the counters summed
}

// vethXmitErrors names veth's per-queue refused-frame counters.
var vethXmitErrors = regexp.MustCompile(`^tx_queue_[0-9]+_xdp_xmit_errors$`)

// openXmitDrops finds iface's counters whose names match names and reads
// them once.
func openXmitDrops(iface string, names *regexp.Regexp) (*xmitDrops, error) {
	r, err := netdev.OpenEthtoolStats(iface)
	if err != nil {
		return nil, fmt.Errorf("read the ethtool counters of %s: %w", iface, err)
	}
	d := &xmitDrops{r: r}
	for i, name := range r.Stats.Names {
		if names.MatchString(name) {
			d.idx = append(d.idx, i)
		}
	}
	if len(d.idx) == 0 {
		d.Close()
		return nil, fmt.Errorf("%s counts no refused XDP frames in ethtool -S", iface)
	}
	if _, err := d.Sum(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Sum is the refused frames so far, over every queue.
func (d *xmitDrops) Sum() (uint64, error) {
	v, err := d.r.Read()
	if err != nil {
		return 0, fmt.Errorf("read the ethtool counters: %w", err)
	}
	var sum uint64
	for _, i := range d.idx {
		sum += v[i]
	}
	return sum, nil
}

// Close closes the reader.
func (d *xmitDrops) Close() error { return d.r.Close() }
