// Package testbed builds xdpscan's private test network: a scanner network
// namespace and a target namespace joined by a veth pair, with no route
// anywhere else, and a target whose answers are known in advance.
//
// The target owns a whole range by AnyIP (`ip route add local RANGE dev lo`).
// With the kernel target, TCP listeners on 0.0.0.0 answer SYN-ACK on the
// open ports of every address and the stack answers RST on every other port;
// an nftables rule drops every probe to a filtered address (last octet >=
// FilteredFrom). The XDP responder target applies the same rule at XDP speed
// with XDP_TX. Config.State is the ground truth for both.
//
// All addresses come from 198.18.0.0/15, the RFC 2544 benchmarking range,
// and in IPv6 mode (Range6) from 2001:2::/48, RFC 5180's.
package testbed

import (
	"fmt"
	"net"
	"net/netip"
)

// Target selects who answers the probes.
type Target string

const (
	// TargetKernel is the target namespace's own TCP stack: real behaviour,
	// limited to what one softirq can answer.
	TargetKernel Target = "kernel"
	// TargetXDP is the XDP responder: answers at XDP speed.
	TargetXDP Target = "xdp"
)

// State is what a probe to (address, port) must find.
type State string

const (
	Open     State = "open"
	Closed   State = "closed"
	Filtered State = "filtered"
	// Prohibited answers with ICMP admin prohibited: "filtered", with a reason.
	Prohibited State = "prohibited"
	// Alive answers echo requests.
	Alive   State = "up"
	Outside State = "outside" // not in the target range
)

// Fixed link parameters. The veth pair exists only inside the namespaces,
// so these names never collide across testbeds.
const (
	ScanIf   = "xs-scan"
	TargetIf = "xs-tgt"
)

var (
	ScanMAC   = net.HardwareAddr{0x02, 0x58, 0x53, 0, 0, 0x01}
	TargetMAC = net.HardwareAddr{0x02, 0x58, 0x53, 0, 0, 0x02}
	ScanIP    = netip.MustParseAddr("198.19.0.1")
	TargetIP  = netip.MustParseAddr("198.19.0.2")
	linkNet   = netip.MustParsePrefix("198.19.0.0/24")
	benchNet  = netip.MustParsePrefix("198.18.0.0/15")

	// IPv6 mode: the link network and the target range's home.
	ScanIP6   = netip.MustParseAddr("2001:2:0:ffff::1")
	TargetIP6 = netip.MustParseAddr("2001:2:0:ffff::2")
	linkNet6  = netip.MustParsePrefix("2001:2:0:ffff::/64")
	benchNet6 = netip.MustParsePrefix("2001:2::/48")
	// DefaultRange6 mirrors the default IPv4 range: 65,536 addresses.
	DefaultRange6 = netip.MustParsePrefix("2001:2::/112")
)

// Config describes one testbed. The zero value is completed by Defaults.
type Config struct {
	// Name makes the namespaces unique: xdpscan-NAME-scan, xdpscan-NAME-tgt.
	Name string `json:"name"`
	// Range is what the target answers for; inside 198.18.0.0/16.
	Range netip.Prefix `json:"range"`
	// Range6, when set, turns IPv6 on: the target answers for it too, with
	// the same rules (by the address's last byte), kernel target only. It
	// lies inside 2001:2::/48 and holds at most 2^24 addresses. Without it
	// IPv6 is disabled in both namespaces, so no IPv6 chatter (neighbour
	// discovery, MLD) touches the link.
	Range6 netip.Prefix `json:"range6,omitzero"`
	// OpenPorts listen on every address of Range (at most 16).
	OpenPorts []uint16 `json:"open_ports"`
	// UDPOpenPorts have a UDP service on every address of Range (kernel
	// target; see udp.go); every other UDP port answers port unreachable.
	UDPOpenPorts []uint16 `json:"udp_open_ports"`
	// Addresses whose last octet is >= FilteredFrom never answer.
	FilteredFrom uint8 `json:"filtered_from"`
	// Addresses whose last octet is in [ProhibitedFrom, FilteredFrom) answer
	// every probe with ICMP admin prohibited (nftables reject), kernel
	// target only; 0 means none.
	ProhibitedFrom uint8 `json:"prohibited_from,omitempty"`
	// ICMPLimit keeps the target kernel's default ICMP rate limits
	// (net.ipv4.icmp_ratelimit 1000 ms/token per host, icmp_msgs_per_sec
	// 1000); by default they are lifted so every closed UDP port answers.
	ICMPLimit bool `json:"icmp_limit,omitempty"`
	// Target selects the kernel stack or the XDP responder.
	Target Target `json:"target"`
	// RPS spreads the receiving softirq of both veth ends over all CPUs.
	RPS bool `json:"rps"`
	// TargetNAPI turns GRO on at the target's veth end, which gives it NAPI:
	// frames sent from XDP (scan --tx xdp) reach only a veth end with NAPI.
	// The scanner's end keeps every offload off (libpcap sizes its ring by
	// them), and so does the target's by default (captures run there).
	TargetNAPI bool `json:"target_napi,omitempty"`
	// Queues gives both veth ends this many RX and TX queues, with GRO
	// (NAPI) at both ends, and threaded NAPI on the kernel target, so
	// that receive work spreads over the CPUs (queues.go). 0 or 1: one queue.
	Queues int `json:"queues,omitempty"`
	// Scanners is how many scanner namespaces ("hosts" of a fleet) there
	// are, each with its own link to the target (scanners.go); 0 or 1: one.
	Scanners int `json:"scanners,omitempty"`
}

// Defaults fills the unset fields.
func (c Config) Defaults() Config {
	if c.Name == "" {
		c.Name = "default"
	}
	if !c.Range.IsValid() {
		c.Range = netip.MustParsePrefix("198.18.0.0/16")
	}
	if c.OpenPorts == nil {
		c.OpenPorts = []uint16{22, 80, 443, 8080}
	}
	if c.UDPOpenPorts == nil {
		c.UDPOpenPorts = []uint16{53, 123}
	}
	if c.FilteredFrom == 0 {
		c.FilteredFrom = 240
	}
	if c.Target == "" {
		c.Target = TargetKernel
	}
	return c
}

// Validate rejects configurations that could send traffic outside the
// benchmarking range or collide with the link network.
func (c Config) Validate() error {
	if !c.Range.Addr().Is4() || !benchNet.Contains(c.Range.Addr()) || c.Range.Bits() < benchNet.Bits() {
		return fmt.Errorf("testbed range %s must lie inside %s (RFC 2544 benchmarking)", c.Range, benchNet)
	}
	if c.Range.Overlaps(linkNet) {
		return fmt.Errorf("testbed range %s overlaps the link network %s", c.Range, linkNet)
	}
	if c.Queues < 0 || c.Queues > MaxQueues {
		return fmt.Errorf("testbed queues %d: use 1 to %d", c.Queues, MaxQueues)
	}
	if len(c.OpenPorts) == 0 || len(c.OpenPorts) > 16 {
		return fmt.Errorf("testbed needs 1 to 16 open ports, got %d", len(c.OpenPorts))
	}
	if len(c.UDPOpenPorts) > 16 {
		return fmt.Errorf("testbed serves at most 16 UDP ports, got %d", len(c.UDPOpenPorts))
	}
	if c.ProhibitedFrom != 0 && (c.ProhibitedFrom >= c.FilteredFrom || c.Target != TargetKernel) {
		return fmt.Errorf("testbed prohibited slice from %d must lie below the filtered one (%d), on the kernel target", c.ProhibitedFrom, c.FilteredFrom)
	}
	if c.Range6.IsValid() {
		switch {
		case !c.Range6.Addr().Is6() || c.Range6.Addr().Is4In6() || !benchNet6.Contains(c.Range6.Addr()) || c.Range6.Bits() < benchNet6.Bits():
			return fmt.Errorf("testbed IPv6 range %s must lie inside %s (RFC 5180 benchmarking)", c.Range6, benchNet6)
		case c.Range6.Bits() < 104:
			return fmt.Errorf("testbed IPv6 range %s is too wide: at most a /104 (2^24 addresses)", c.Range6)
		case c.Range6.Overlaps(linkNet6):
			return fmt.Errorf("testbed IPv6 range %s overlaps the link network %s", c.Range6, linkNet6)
		case c.Target != TargetKernel:
			return fmt.Errorf("testbed IPv6 mode needs the kernel target: the XDP responder answers IPv4 only")
		}
	}
	if c.Target != TargetKernel && c.Target != TargetXDP {
		return fmt.Errorf("testbed target %q: use kernel or xdp", c.Target)
	}
	if err := ValidName(c.Name); err != nil {
		return err
	}
	return c.validateScanners()
}

// ScanNS and TargetNS are the namespaces' names.
func (c Config) ScanNS() string   { return "xdpscan-" + c.Name + "-scan" }
func (c Config) TargetNS() string { return "xdpscan-" + c.Name + "-tgt" }

// State is the ground truth for a TCP SYN probe to (addr, port).
func (c Config) State(addr netip.Addr, port uint16) State {
	return c.ProbeState(6, addr, port)
}

// Contains says whether the target answers for addr (in Range or Range6).
func (c Config) Contains(addr netip.Addr) bool {
	return c.Range.Contains(addr) || c.Range6.IsValid() && c.Range6.Contains(addr)
}

// ProbeState is the ground truth for a probe of IP protocol proto (6 TCP,
// 17 UDP, 1 or 58 ICMP echo with port 0) to (addr, port). The rules depend
// on the address's last byte, in either family.
func (c Config) ProbeState(proto uint8, addr netip.Addr, port uint16) State {
	if !c.Contains(addr) {
		return Outside
	}
	octet := addr.As16()[15]
	if octet >= c.FilteredFrom {
		return Filtered
	}
	if c.ProhibitedFrom != 0 && octet >= c.ProhibitedFrom {
		return Prohibited
	}
	open := c.OpenPorts
	switch proto {
	case 1, 58:
		return Alive
	case 17:
		open = c.UDPOpenPorts
	}
	for _, p := range open {
		if p == port {
			return Open
		}
	}
	return Closed
}

// Tally counts the ground truth over prefix × ports.
func (c Config) Tally(prefix netip.Prefix, ports []uint16) map[State]int {
	out := map[State]int{}
	for a := prefix.Masked().Addr(); prefix.Contains(a); a = a.Next() {
		for _, p := range ports {
			out[c.State(a, p)]++
		}
	}
	return out
}
