// Package testpkt crafts Ethernet frames for tests with gopacket: VLAN
// stacks, IPv4 options and fragments, IPv6 extension headers, ICMP errors.
package testpkt

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// MACs used by every fixture.
var (
	SrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	DstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
)

// Frame describes one frame. Zero fields take sensible defaults.
type Frame struct {
	// VLANs are the tags, outermost first; with two, the outer is 802.1ad.
	VLANs []uint16
	// MACs default to SrcMAC and DstMAC.
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.Addr
	TTL            uint8  // default 64
	IPID           uint16 // IPv6: the flow label
	// IPv4 only.
	IPOptions     []layers.IPv4Option
	FragOffset    uint16 // in 8-byte units
	MoreFragments bool
	// IPv6 only: extension headers between the IPv6 header and L4, each
	// raw, with its next-header byte filled in by Build.
	IPv6Ext []Ext
	// L4 is the transport layer (its checksum is computed over the IP
	// pseudo-header); nil leaves only the payload.
	L4      gopacket.SerializableLayer
	Proto   layers.IPProtocol // needed when L4 is nil
	Payload []byte
}

// Ext is a raw IPv6 extension header; its first byte is overwritten with the
// next header's number.
type Ext struct {
	Type  layers.IPProtocol
	Bytes []byte
}

// HopByHop is an empty 8-byte hop-by-hop options header (PadN).
func HopByHop() Ext {
	return Ext{layers.IPProtocolIPv6HopByHop, []byte{0, 0, 1, 4, 0, 0, 0, 0}}
}

// DestOpts is a 16-byte destination options header.
func DestOpts() Ext {
	return Ext{layers.IPProtocolIPv6Destination, []byte{0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
}

// Fragment6 is an IPv6 fragment header at offset (8-byte units).
func Fragment6(offset uint16, more bool) Ext {
	v := offset << 3
	if more {
		v |= 1
	}
	return Ext{layers.IPProtocolIPv6Fragment, []byte{0, 0, byte(v >> 8), byte(v), 0, 0, 0x12, 0x34}}
}

// TCP is a TCP header with the given flags ("S", "SA", "R", "RA", "A", ...).
func TCP(sport, dport uint16, seq, ack uint32, flags string) *layers.TCP {
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack, Window: 64240}
	for _, f := range flags {
		switch f {
		case 'S':
			t.SYN = true
		case 'A':
			t.ACK = true
		case 'R':
			t.RST = true
		case 'F':
			t.FIN = true
		case 'P':
			t.PSH = true
		default:
			panic(fmt.Sprintf("testpkt: unknown TCP flag %q", f))
		}
	}
	return t
}

// Build serializes f.
func Build(f Frame) []byte {
	ttl := f.TTL
	if ttl == 0 {
		ttl = 64
	}
	eth := &layers.Ethernet{SrcMAC: SrcMAC, DstMAC: DstMAC}
	if f.SrcMAC != nil {
		eth.SrcMAC = f.SrcMAC
	}
	if f.DstMAC != nil {
		eth.DstMAC = f.DstMAC
	}
	var stack []gopacket.SerializableLayer
	stack = append(stack, eth)

	proto := f.Proto
	switch l := f.L4.(type) {
	case *layers.TCP:
		proto = layers.IPProtocolTCP
	case *layers.UDP:
		proto = layers.IPProtocolUDP
	case *layers.ICMPv4:
		proto = layers.IPProtocolICMPv4
	case *layers.ICMPv6:
		proto = layers.IPProtocolICMPv6
	case nil:
	default:
		panic(fmt.Sprintf("testpkt: unsupported L4 %T", l))
	}

	var l3Type layers.EthernetType
	var network gopacket.NetworkLayer
	var l3 []gopacket.SerializableLayer
	if f.Src.Is4() {
		l3Type = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: ttl, Id: f.IPID, Protocol: proto,
			SrcIP: f.Src.AsSlice(), DstIP: f.Dst.AsSlice(), Options: f.IPOptions,
			FragOffset: f.FragOffset}
		if f.MoreFragments {
			ip.Flags = layers.IPv4MoreFragments
		}
		network = ip
		l3 = append(l3, ip)
	} else {
		l3Type = layers.EthernetTypeIPv6
		next := proto
		if len(f.IPv6Ext) > 0 {
			next = f.IPv6Ext[0].Type
		}
		ip := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: next, SrcIP: f.Src.AsSlice(), DstIP: f.Dst.AsSlice(), FlowLabel: uint32(f.IPID)}
		network = ip
		l3 = append(l3, ip)
		for i, e := range f.IPv6Ext {
			b := append([]byte(nil), e.Bytes...)
			if i+1 < len(f.IPv6Ext) {
				b[0] = byte(f.IPv6Ext[i+1].Type)
			} else {
				b[0] = byte(proto)
			}
			l3 = append(l3, gopacket.Payload(b))
		}
	}

	// Ethernet and VLAN types chain outermost first.
	types := []layers.EthernetType{}
	for i := range f.VLANs {
		if len(f.VLANs) == 2 && i == 0 {
			types = append(types, layers.EthernetTypeQinQ)
		} else {
			types = append(types, layers.EthernetTypeDot1Q)
		}
	}
	types = append(types, l3Type)
	eth.EthernetType = types[0]
	for i, id := range f.VLANs {
		stack = append(stack, &layers.Dot1Q{VLANIdentifier: id, Type: types[i+1]})
	}
	stack = append(stack, l3...)

	switch l := f.L4.(type) {
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(network)
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(network)
	case *layers.ICMPv6:
		_ = l.SetNetworkLayerForChecksum(network)
	}
	if f.L4 != nil {
		stack = append(stack, f.L4)
	}
	if len(f.Payload) > 0 {
		stack = append(stack, gopacket.Payload(f.Payload))
	}

	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, stack...); err != nil {
		panic(fmt.Sprintf("testpkt: serialize: %v", err))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ChecksumsMatch decodes an Ethernet/IPv4 or IPv6 frame carrying TCP, UDP,
// ICMP or ICMPv6 with gopacket, serializes it again with freshly computed
// checksums and says whether the bytes are the same (gopacket's Ethernet
// padding aside): an independent check of checksums computed incrementally
// or in BPF.
func ChecksumsMatch(frame []byte) (bool, error) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	var ip interface {
		gopacket.NetworkLayer
		gopacket.SerializableLayer
	}
	if v4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		ip = v4
	} else if v6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		ip = v6
	}
	if eth == nil || ip == nil {
		return false, fmt.Errorf("not an Ethernet/IP frame: % x", frame)
	}
	var l4 gopacket.SerializableLayer
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(ip)
		l4 = l
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(ip)
		l4 = l
	default:
		if icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			l4 = icmp
		} else if icmp6, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			_ = icmp6.SetNetworkLayerForChecksum(ip)
			l4 = icmp6
		} else {
			return false, fmt.Errorf("no TCP, UDP, ICMP or ICMPv6 in % x", frame)
		}
	}
	stack := []gopacket.SerializableLayer{eth, ip, l4}
	// The bytes past the L4 header, whatever gopacket decoded them as.
	if payload := l4.(gopacket.Layer).LayerPayload(); len(payload) > 0 {
		stack = append(stack, gopacket.Payload(payload))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, stack...); err != nil {
		return false, err
	}
	out := buf.Bytes()
	return len(out) >= len(frame) && string(out[:len(frame)]) == string(frame), nil
}
