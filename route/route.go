package route

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Path is how probes leave this host: interface, addresses and next hop.
type Path struct {
	Iface     string
	SrcMAC    net.HardwareAddr
	Src       netip.Addr
	NextHop   netip.Addr // the gateway, or the target itself when on-link
	RouterMAC net.HardwareAddr
}

// InterfaceError is a Resolve failure caused by the interface the user
// named (missing, down), not by the network: a usage error to the CLI.
type InterfaceError struct{ msg string }

func (e *InterfaceError) Error() string { return e.msg }

// Resolve finds the path to dst (IPv4 or IPv6) through the kernel's
// routing and neighbour tables (netlink), honouring what the user forced:
// iface, src and routerMAC may each be zero. The next hop's MAC comes from
// the neighbour table, after asking the kernel to resolve it (ARP, or
// neighbour discovery for IPv6) when it is not known yet.
func Resolve(dst netip.Addr, iface string, src netip.Addr, routerMAC net.HardwareAddr) (Path, error) {
	family, fam := netlink.FAMILY_V4, "IPv4"
	if dst.Is6() {
		family, fam = netlink.FAMILY_V6, "IPv6"
	}
	if iface != "" {
		// Before the route: a down interface has no routes, and "no route"
		// would hide the cause.
		if l, err := netlink.LinkByName(iface); err == nil && l.Attrs().Flags&net.FlagUp == 0 {
			return Path{}, &InterfaceError{fmt.Sprintf("interface %s is down: bring it up first (ip link set dev %s up)", iface, iface)}
		}
	}
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
			return Path{}, &InterfaceError{fmt.Sprintf("interface %s: no such interface; see `ip link`", iface)}
		}
		if routerMAC == nil {
			return Path{}, fmt.Errorf("the route to %s leaves by %s, not %s: pass --router-mac to send by %s anyway", dst, p.Iface, iface, iface)
		}
		p = Path{Iface: iface, SrcMAC: l.Attrs().HardwareAddr}
		link = l
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return Path{}, &InterfaceError{fmt.Sprintf("interface %s is down: bring it up first (ip link set dev %s up)", p.Iface, p.Iface)}
	}
	p.NextHop = dst
	if rt.Gw != nil {
		p.NextHop = ipOf(rt.Gw, dst.Is6())
	}
	switch {
	case src.IsValid():
		p.Src = src
	case rt.Src != nil:
		p.Src = ipOf(rt.Src, dst.Is6())
	default:
		addrs, err := netlink.AddrList(link, family)
		if err != nil {
			return Path{}, fmt.Errorf("read the addresses of %s: %w", p.Iface, err)
		}
		for _, a := range addrs {
			// A tentative address (duplicate detection running) cannot be
			// used yet; a link-local one cannot reach a routed target.
			if ip := ipOf(a.IP, dst.Is6()); ip.IsGlobalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				p.Src = ip
				break
			}
		}
		if !p.Src.IsValid() {
			return Path{}, fmt.Errorf("interface %s has no usable %s address: pass --source-ip", p.Iface, fam)
		}
	}
	if routerMAC != nil {
		p.RouterMAC = routerMAC
		return p, nil
	}
	ifindex := link.Attrs().Index
	if mac, err := lookupNeighbour(ifindex, family, p.NextHop); err != nil || mac != nil {
		p.RouterMAC = mac
		return p, err
	}
	// Not known yet: ask the kernel to resolve it (NTF_USE makes it send the
	// ARP request or neighbour solicitation itself, as it would for our
	// first packet), then wait.
	_ = netlink.NeighSet(&netlink.Neigh{LinkIndex: ifindex, Family: family, IP: p.NextHop.AsSlice(), Flags: netlink.NTF_USE})
	for deadline := time.Now().Add(resolveTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if mac, err := lookupNeighbour(ifindex, family, p.NextHop); err != nil || mac != nil {
			p.RouterMAC = mac
			return p, err
		}
	}
	how := "ARP"
	if dst.Is6() {
		how = "neighbour solicitation"
	}
	return Path{}, fmt.Errorf("cannot resolve the MAC address of next hop %s on %s: no answer to %s within %s; "+
		"check the link, or pass --router-mac MAC", p.NextHop, p.Iface, how, resolveTimeout)
}

const resolveTimeout = 2 * time.Second

// ipOf converts a netlink address of the given family.
func ipOf(ip net.IP, v6 bool) netip.Addr {
	if !v6 {
		ip = ip.To4()
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}

// lookupNeighbour returns the usable MAC of ip on ifindex, or nil.
func lookupNeighbour(ifindex, family int, ip netip.Addr) (net.HardwareAddr, error) {
	neighs, err := netlink.NeighList(ifindex, family)
	if err != nil {
		return nil, fmt.Errorf("read neighbour table: %w", err)
	}
	for _, n := range neighs {
		if ipOf(n.IP, ip.Is6()) == ip && len(n.HardwareAddr) == 6 && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			return n.HardwareAddr, nil
		}
	}
	return nil, nil
}
