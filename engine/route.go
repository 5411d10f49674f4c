package engine

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// Path is how probes leave this host: interface, addresses and next hop.
type Path struct {
	Iface     string
	SrcMAC    net.HardwareAddr
	Src       netip.Addr
	NextHop   netip.Addr // the gateway, or the target itself when on-link
	RouterMAC net.HardwareAddr
}

// ResolvePath finds the path to dst through the kernel's routing and
// neighbour tables (netlink), honouring what the user forced: iface, src
// and routerMAC may each be zero.
func ResolvePath(dst netip.Addr, iface string, src netip.Addr, routerMAC net.HardwareAddr) (Path, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return Path{}, fmt.Errorf("no route to %s: %v; add one, or pass -i IFACE and --router-mac MAC", dst, err)
	}
	rt := routes[0]
	link, err := netlink.LinkByIndex(rt.LinkIndex)
	if err != nil {
		return Path{}, fmt.Errorf("route to %s: interface %d: %w", dst, rt.LinkIndex, err)
	}
	p := Path{Iface: link.Attrs().Name, SrcMAC: link.Attrs().HardwareAddr}
	if iface != "" && iface != p.Iface {
		l, err := netlink.LinkByName(iface)
		if err != nil {
			return Path{}, fmt.Errorf("interface %s: no such interface; see `ip link`", iface)
		}
		if routerMAC == nil {
			return Path{}, fmt.Errorf("the route to %s leaves by %s, not %s: pass --router-mac to send by %s anyway", dst, p.Iface, iface, iface)
		}
		p = Path{Iface: iface, SrcMAC: l.Attrs().HardwareAddr}
		link = l
	}
	p.NextHop = dst
	if rt.Gw != nil {
		p.NextHop, _ = netip.AddrFromSlice(rt.Gw.To4())
	}
	switch {
	case src.IsValid():
		p.Src = src
	case rt.Src != nil:
		p.Src, _ = netip.AddrFromSlice(rt.Src.To4())
	default:
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil || len(addrs) == 0 {
			return Path{}, fmt.Errorf("interface %s has no IPv4 address: pass --source-ip", p.Iface)
		}
		p.Src, _ = netip.AddrFromSlice(addrs[0].IP.To4())
	}
	if routerMAC != nil {
		p.RouterMAC = routerMAC
		return p, nil
	}
	ifindex := link.Attrs().Index
	if mac, err := lookupNeighbour(ifindex, p.NextHop); err != nil || mac != nil {
		p.RouterMAC = mac
		return p, err
	}
	// Not known yet: ask the kernel to resolve it (NTF_USE makes it send the
	// ARP request itself, as it would for our first packet), then wait.
	_ = netlink.NeighSet(&netlink.Neigh{LinkIndex: ifindex, Family: netlink.FAMILY_V4,
		IP: p.NextHop.AsSlice(), Flags: netlink.NTF_USE})
	for deadline := time.Now().Add(resolveTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if mac, err := lookupNeighbour(ifindex, p.NextHop); err != nil || mac != nil {
			p.RouterMAC = mac
			return p, err
		}
	}
	return Path{}, fmt.Errorf("cannot resolve the MAC address of next hop %s on %s: no answer to ARP within %s; "+
		"check the link, or pass --router-mac MAC", p.NextHop, p.Iface, resolveTimeout)
}

const resolveTimeout = 2 * time.Second

// lookupNeighbour returns the usable MAC of ip on ifindex, or nil.
func lookupNeighbour(ifindex int, ip netip.Addr) (net.HardwareAddr, error) {
	neighs, err := netlink.NeighList(ifindex, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("read neighbour table: %w", err)
	}
	for _, n := range neighs {
		a, _ := netip.AddrFromSlice(n.IP.To4())
		if a == ip && len(n.HardwareAddr) == 6 && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			return n.HardwareAddr, nil
		}
	}
	return nil, nil
}
