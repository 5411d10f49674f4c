package testbed

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// MaxScanners is the most scanner namespaces a testbed has (--scanners):
// each has its own /24 in 198.19.0.0/16 and its own link to the target.
const MaxScanners = 16

// scanners is how many scanner namespaces the testbed has (at least 1).
func (c Config) scanners() int { return max(1, c.Scanners) }

// ScannerNS is scanner i's namespace: xdpscan-NAME-scan for 0 (ScanNS),
// xdpscan-NAME-scanI for the others. Each is a "host" of a fleet: its own
// veth pair to the target, its own address.
func (c Config) ScannerNS(i int) string {
	if i == 0 {
		return c.ScanNS()
	}
	return c.ScanNS() + strconv.Itoa(i)
}

// ScannerIP is scanner i's address: 198.19.I.1 (ScanIP for 0), on a /24
// whose .2 is the target's end of its link.
func ScannerIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(i), 1}) }

func targetLinkIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(i), 2}) }

// TargetLinkIf is the target's end of scanner i's link (TargetIf for 0).
func TargetLinkIf(i int) string {
	if i == 0 {
		return TargetIf
	}
	return TargetIf + strconv.Itoa(i)
}

func scannerMACs(i int) (scan, tgt net.HardwareAddr) {
	return net.HardwareAddr{0x02, 0x58, 0x53, byte(i), 0, 0x01}, net.HardwareAddr{0x02, 0x58, 0x53, byte(i), 0, 0x02}
}

func (c Config) validateScanners() error {
	if c.Scanners < 0 || c.Scanners > MaxScanners {
		return fmt.Errorf("testbed --scanners %d: use 1 to %d", c.Scanners, MaxScanners)
	}
	if c.Scanners <= 1 {
		return nil
	}
	if c.Target != TargetKernel || c.Range6.IsValid() {
		return fmt.Errorf("testbed --scanners %d: several scanners need the kernel target, IPv4 only", c.Scanners)
	}
	for i := range c.Scanners {
		if link := netip.PrefixFrom(ScannerIP(i), 24).Masked(); c.Range.Overlaps(link) {
			return fmt.Errorf("testbed range %s overlaps scanner %d's link network %s", c.Range, i, link)
		}
	}
	return nil
}

// scannerSteps builds scanners 1 to N-1, as Up builds scanner 0: a
// namespace with IPv6 off, a veth pair created inside the namespaces with
// offloads off, static neighbours, and only the route to the target range.
func (c Config) scannerSteps() [][]string {
	var steps [][]string
	t := c.TargetNS()
	for i := 1; i < c.scanners(); i++ {
		s, sif, tif := c.ScannerNS(i), ScanIf, TargetLinkIf(i)
		smac, tmac := scannerMACs(i)
		sip, tip := ScannerIP(i), targetLinkIP(i)
		steps = append(steps,
			[]string{"ip", "netns", "add", s},
			[]string{"ip", "netns", "exec", s, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
			[]string{"ip", "-n", s, "link", "set", "lo", "up"},
			[]string{"ip", "link", "add", sif, "netns", s, "address", smac.String(), "type", "veth",
				"peer", "name", tif, "netns", t, "address", tmac.String()},
			[]string{"ip", "netns", "exec", s, "ethtool", "-K", sif, "tx", "off", "sg", "off", "tso", "off", "gso", "off", "gro", "off"},
			[]string{"ip", "netns", "exec", t, "ethtool", "-K", tif, "tx", "off", "sg", "off", "tso", "off", "gso", "off", "gro", "off"},
			[]string{"ip", "-n", s, "addr", "add", sip.String() + "/24", "dev", sif},
			[]string{"ip", "-n", t, "addr", "add", tip.String() + "/24", "dev", tif},
			[]string{"ip", "-n", s, "link", "set", sif, "up"},
			[]string{"ip", "-n", t, "link", "set", tif, "up"},
			[]string{"ip", "-n", s, "neigh", "replace", tip.String(), "lladdr", tmac.String(), "dev", sif, "nud", "permanent"},
			[]string{"ip", "-n", t, "neigh", "replace", sip.String(), "lladdr", smac.String(), "dev", tif, "nud", "permanent"},
			[]string{"ip", "-n", s, "route", "add", c.Range.String(), "via", tip.String(), "dev", sif},
		)
	}
	return steps
}

// extraScannerNamespaces are the namespaces of scanners 1 and up present
// on the host, whatever the testbed was built with.
func (c Config) extraScannerNamespaces() []string {
	all, err := Namespaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ns := range all {
		if n, ok := strings.CutPrefix(ns, c.ScanNS()); ok && n != "" {
			if _, err := strconv.Atoi(n); err == nil {
				out = append(out, ns)
			}
		}
	}
	return out
}
