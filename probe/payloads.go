package probe

import (
	"encoding/binary"

	"github.com/xdpscan/xdpscan/loader"
)

// Payload is what a UDP probe carries so that a real service answers it.
// A UDP service only answers a request it understands: an empty datagram to
// DNS or SNMP gets silence, which looks exactly like "filtered".
//
// Every UDP probe's source port carries cookie bits (see UDPSourcePort). A
// payload whose service echoes bytes of the request also carries cookie
// bits there, and the XDP program checks the echo: Echo names where, and
// UDPEchoes hands it to the program's udp_echoes map.
type Payload struct {
	Name  string
	Ports []uint16
	// Data is the request with every cookie bit clear (DNS: ID 0 and the
	// name in upper case).
	Data []byte
	Echo loader.EchoKind
}

// EchoBits is how many cookie bits an answer of the payload's service
// echoes (besides the source port): 0 when it echoes nothing.
func (p *Payload) EchoBits() int {
	switch p.Echo {
	case loader.EchoDNS:
		return 16 + 11
	case loader.EchoNTP:
		return 64
	case loader.EchoSNMP:
		return 30
	}
	return 0
}

// dnsLetterOff is where letter i of "version.bind" lies in the DNS
// payload: bpf/include/probe_udp.h's dns_letter_off.
func dnsLetterOff(i int) int {
	if i < 7 {
		return 13 + i
	}
	return 14 + i
}

// stamp writes the cookie bits of hash h into pay, a copy of Data, and
// returns what they add to its ones-complement sum (bpf/include/probe_udp.h's
// udp_payload_sum, less the map's sum of Data).
func (p *Payload) stamp(pay []byte, h uint64) uint32 {
	var s uint32
	switch p.Echo {
	case loader.EchoDNS:
		id := DNSID(h)
		binary.BigEndian.PutUint16(pay, id)
		s += uint32(id)
		cs := DNSCase(h)
		for i := 0; i < 11; i++ {
			if cs>>i&1 == 1 {
				o := dnsLetterOff(i)
				pay[o] |= 0x20
				if o%2 == 1 {
					s += 0x20
				} else {
					s += 0x2000
				}
			}
		}
	case loader.EchoNTP:
		binary.BigEndian.PutUint64(pay[40:], h)
		s += uint32(h>>48) + uint32(h>>32&0xffff) + uint32(h>>16&0xffff) + uint32(h&0xffff)
	case loader.EchoSNMP:
		rid := SNMPID(h)
		binary.BigEndian.PutUint32(pay[17:], rid)
		s += rid>>24 + rid>>8&0xffff + (rid&0xff)<<8
	}
	return s
}

// Payloads is the payload table. To add a service: its ports, a request
// it answers, and where (if anywhere) it echoes bytes of the request (a
// new kind in bpf/include/probe_udp.h's udp_echo_ok and udp_payload_sum).
var Payloads = []Payload{
	{
		// DNS: "version.bind" TXT CH, which BIND, Unbound, dnsmasq and
		// PowerDNS all answer (with the version or REFUSED: either proves
		// a server). The transaction ID and the name's letter case (0x20
		// bits: servers copy the question as asked) carry cookie bits.
		Name: "dns", Ports: []uint16{53, 5353},
		Data: []byte{
			0, 0, // ID: cookie bits
			0x01, 0x00, // flags: RD
			0, 1, 0, 0, 0, 0, 0, 0, // QDCOUNT 1
			7, 'V', 'E', 'R', 'S', 'I', 'O', 'N', 4, 'B', 'I', 'N', 'D', 0,
			0, 16, // TXT
			0, 3, // CH
		},
		Echo: loader.EchoDNS,
	},
	{
		// NTP v4 client request (mode 3): a server copies our transmit
		// timestamp (64 cookie bits) into its origin timestamp (RFC 5905 8).
		Name: "ntp", Ports: []uint16{123},
		Data: append([]byte{0x23}, make([]byte, 47)...), // LI 0, VN 4, mode 3
		Echo: loader.EchoNTP,
	},
	{
		// SNMP v2c GetRequest for sysDescr.0 with community "public". The
		// request-id (bytes 17-20) is echoed; the XDP program walks the
		// response's BER lengths to find it.
		Name: "snmp", Ports: []uint16{161},
		Data: []byte{
			0x30, 0x29, 0x02, 0x01, 0x01, // SEQUENCE, version 2c
			0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c',
			0xa0, 0x1c, // GetRequest
			0x02, 0x04, 0, 0, 0, 0, // request-id
			0x02, 0x01, 0x00, 0x02, 0x01, 0x00, // error-status, error-index
			0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00, // sysDescr.0 NULL
		},
		Echo: loader.EchoSNMP,
	},
	{
		// SSDP discovery: UPnP devices answer any M-SEARCH with HTTP/1.1 200.
		Name: "ssdp", Ports: []uint16{1900},
		Data: []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"),
	},
}

// genericPayload is sent to every port the table does not name: an empty
// datagram, as nmap and masscan send. A closed port still answers with ICMP
// port unreachable; an open one answers only if its protocol accepts it.
var genericPayload = Payload{Name: "empty"}

// PayloadFor returns the payload sent to a UDP port.
func PayloadFor(port uint16) *Payload {
	for i := range Payloads {
		for _, p := range Payloads[i].Ports {
			if p == port {
				return &Payloads[i]
			}
		}
	}
	return &genericPayload
}

// UDPEchoes describes every payload to the XDP program, keyed by port:
// what its answers echo, and its length and sum so that an ICMP error
// quoting the probe is checked on the UDP checksum.
func UDPEchoes() map[uint16]loader.UDPEcho {
	out := map[uint16]loader.UDPEcho{}
	for _, p := range Payloads {
		for _, port := range p.Ports {
			out[port] = loader.UDPEcho{Kind: p.Echo, Len: uint16(len(p.Data)), Sum: sum16(p.Data, 0)}
		}
	}
	return out
}

// UDPSourcePort is the source port of the UDP probe with this cookie, so a
// reply to any other port of ours fails validation. bpf/include/probe_udp.h's
// udp_sport() is its twin.
func UDPSourcePort(cookie uint32, lo, hi uint16) uint16 {
	return lo + uint16(cookie%(uint32(hi)-uint32(lo)+1))
}

// Request is the payload of the probe with hash h, as Fill writes it: for
// tests and tools that build a probe or its answer outside a template.
func (p *Payload) Request(h uint64) []byte {
	b := append([]byte(nil), p.Data...)
	p.stamp(b, h)
	return b
}
