package probe

import "github.com/xdpscan/xdpscan/loader"

// Payload is what a UDP probe carries so that a real service answers it.
// A UDP service only answers a request it understands: an empty datagram to
// DNS or SNMP gets silence, which looks exactly like "filtered".
//
// Every UDP probe's source port carries its cookie (see UDPSourcePort). A
// payload whose service echoes bytes of the request (DNS's transaction ID,
// NTP's transmit timestamp coming back as the origin timestamp) also carries
// the cookie there, and the XDP program checks the echo: EchoAt/CookieLen
// go into its udp_echoes map.
type Payload struct {
	Name  string
	Ports []uint16
	Data  []byte
	// CookieAt is where the cookie's low CookieLen bytes (big endian) go in
	// Data; CookieLen 0 means the service echoes nothing.
	CookieAt, CookieLen int
	// EchoAt is where the reply's payload carries those bytes back.
	EchoAt int
}

// Payloads is the payload table. To add a service: its ports, a request
// it answers, and where (if anywhere) it echoes bytes of the request.
var Payloads = []Payload{
	{
		// DNS: "version.bind" TXT CH, which BIND, Unbound, dnsmasq and
		// PowerDNS all answer (with the version or REFUSED: either proves
		// a server). The transaction ID is the cookie.
		Name: "dns", Ports: []uint16{53, 5353},
		Data: []byte{
			0, 0, // ID: the cookie
			0x01, 0x00, // flags: RD
			0, 1, 0, 0, 0, 0, 0, 0, // QDCOUNT 1
			7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 4, 'b', 'i', 'n', 'd', 0,
			0, 16, // TXT
			0, 3, // CH
		},
		CookieAt: 0, CookieLen: 2, EchoAt: 0,
	},
	{
		// NTP v4 client request (mode 3): a server copies our transmit
		// timestamp into its origin timestamp (RFC 5905 8). The cookie is
		// the timestamp's fraction.
		Name: "ntp", Ports: []uint16{123},
		Data:     append([]byte{0x23}, make([]byte, 47)...), // LI 0, VN 4, mode 3
		CookieAt: 44, CookieLen: 4, EchoAt: 28,
	},
	{
		// SNMP v2c GetRequest for sysDescr.0 with community "public". The
		// request-id is echoed, but at an offset that depends on the
		// response's BER lengths, so only the source port is checked.
		Name: "snmp", Ports: []uint16{161},
		Data: []byte{
			0x30, 0x29, 0x02, 0x01, 0x01, // SEQUENCE, version 2c
			0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c',
			0xa0, 0x1c, // GetRequest
			0x02, 0x04, 0, 0, 0, 0, // request-id
			0x02, 0x01, 0x00, 0x02, 0x01, 0x00, // error-status, error-index
			0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00, // sysDescr.0 NULL
		},
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

// UDPEchoes maps each service port that echoes the cookie to where, as the
// XDP program's udp_echoes map wants it.
func UDPEchoes() map[uint16]loader.UDPEcho {
	out := map[uint16]loader.UDPEcho{}
	for _, p := range Payloads {
		if p.CookieLen == 0 {
			continue
		}
		for _, port := range p.Ports {
			out[port] = loader.UDPEcho{Off: uint8(p.EchoAt), Len: uint8(p.CookieLen)}
		}
	}
	return out
}

// UDPSourcePort is the source port of the UDP probe with this cookie, so a
// reply to any other port of ours fails validation. bpf/scan.c's
// udp_sport() is its twin.
func UDPSourcePort(cookie uint32, lo, hi uint16) uint16 {
	return lo + uint16(cookie%(uint32(hi)-uint32(lo)+1))
}
