// Package netdev reads a network interface's kind and counters over
// rtnetlink (RTM_GETLINK, open to every user), cheaply enough to sample
// every few milliseconds: the loss a veth end attributes to itself, the
// frames an XDP transmitter handed it.
package netdev

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Link is one interface, by name, in the namespace it was opened in.
type Link struct {
	handle *netlink.Handle
	name   string
}

// Open is the interface name in the current network namespace.
func Open(name string) (*Link, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Link{handle: h, name: name}, nil
}

// OpenIn is the interface name inside the named network namespace ns.
func OpenIn(ns, name string) (*Link, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return &Link{handle: nl, name: name}, nil
}

// Counters are the interface counters that attribute loss.
type Counters struct {
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
	// RxMissedErrors is what the NIC could not take (its FIFO full).
	RxMissedErrors uint64 `json:"rx_missed_errors"`
}

// Sub is a - b, counter by counter: the growth from b to a.
func (a Counters) Sub(b Counters) Counters {
	return Counters{a.RxPackets - b.RxPackets, a.TxPackets - b.TxPackets, a.RxDropped - b.RxDropped, a.TxDropped - b.TxDropped,
		a.RxMissedErrors - b.RxMissedErrors}
}

// Read reads the interface's counters now.
func (l *Link) Read() (Counters, error) {
	link, err := l.handle.LinkByName(l.name)
	if err != nil {
		return Counters{}, fmt.Errorf("read counters of %s: %w", l.name, err)
	}
	s := link.Attrs().Statistics
	if s == nil {
		return Counters{}, fmt.Errorf("read counters of %s: none reported", l.name)
	}
	return Counters{RxPackets: s.RxPackets, TxPackets: s.TxPackets, RxDropped: s.RxDropped, TxDropped: s.TxDropped,
		RxMissedErrors: s.RxMissedErrors}, nil
}

// IsVeth says whether the interface is one end of a veth pair.
func (l *Link) IsVeth() bool {
	link, err := l.handle.LinkByName(l.name)
	return err == nil && link.Type() == "veth"
}

// Close releases the netlink socket.
func (l *Link) Close() { l.handle.Close() }

// IsVeth says whether the interface name in the current namespace is one
// end of a veth pair.
func IsVeth(name string) bool {
	link, err := netlink.LinkByName(name)
	return err == nil && link.Type() == "veth"
}

// RequireUp checks that the interface name exists and is administratively
// up. tcpdump refuses a down interface too: XDP attaches to it without
// complaint, and a capture, a monitor or a scan there would see nothing and
// exit 0 as if the network were silent.
func RequireUp(name string) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: no such interface; see `ip link`", name)
	}
	if ifc.Flags&net.FlagUp == 0 {
		return fmt.Errorf("interface %s is down: bring it up first (ip link set dev %s up)", name, name)
	}
	return nil
}
