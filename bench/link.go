package bench

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// linkCounters reads one interface's counters inside a namespace over
// netlink, cheaply enough to sample every few milliseconds.
type linkCounters struct {
	handle *netlink.Handle
	name   string
}

func openLink(ns, name string) (*linkCounters, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return &linkCounters{handle: nl, name: name}, nil
}

// openLinkHere is openLink in the current namespace.
func openLinkHere(name string) (*linkCounters, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &linkCounters{handle: h, name: name}, nil
}

// isVeth says whether the interface is one end of a veth pair.
func (l *linkCounters) isVeth() bool {
	link, err := l.handle.LinkByName(l.name)
	return err == nil && link.Type() == "veth"
}

// LinkStats are the counters of one veth end that attribute loss.
type LinkStats struct {
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

func (l *linkCounters) read() (LinkStats, error) {
	link, err := l.handle.LinkByName(l.name)
	if err != nil {
		return LinkStats{}, fmt.Errorf("read counters of %s: %w", l.name, err)
	}
	s := link.Attrs().Statistics
	if s == nil {
		return LinkStats{}, fmt.Errorf("read counters of %s: none reported", l.name)
	}
	return LinkStats{RxPackets: s.RxPackets, TxPackets: s.TxPackets, RxDropped: s.RxDropped, TxDropped: s.TxDropped}, nil
}

func (l *linkCounters) close() { l.handle.Close() }

func (a LinkStats) sub(b LinkStats) LinkStats {
	return LinkStats{a.RxPackets - b.RxPackets, a.TxPackets - b.TxPackets, a.RxDropped - b.RxDropped, a.TxDropped - b.TxDropped}
}
