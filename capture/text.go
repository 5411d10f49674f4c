package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// TextOptions are tcpdump's printing flags.
type TextOptions struct {
	Verbose int  // -v, -vv, -vvv
	Link    bool // -e: the link-level header
	// Hex is -x (1: from the network header) or -xx (2: the whole frame);
	// ASCII adds the characters (-X, -XX).
	Hex   int
	ASCII bool
	Quick bool // -q
	// Time is the timestamp form: 0 the default (time of day), 1 none (-t),
	// 2 Unix seconds (-tt), 3 the gap from the previous packet (-ttt),
	// 4 date and time (-tttt), 5 the time since the first packet (-ttttt).
	Time int
	// Absolute prints TCP sequence numbers as they are (-S) instead of
	// relative to the first seen in a conversation.
	Absolute bool
	Nano     bool           // nanosecond timestamps (--time-stamp-precision nano)
	Location *time.Location // nil: local time
}

// Printer formats packets as tcpdump prints them. Names are never resolved
// (tcpdump -nn). It keeps what tcpdump keeps between packets: the previous
// and first timestamps and each TCP conversation's first sequence numbers.
type Printer struct {
	o             TextOptions
	prev, first   int64
	seen          bool
	conversations map[tcpKey]tcpSeqs
	b             []byte
}

// maxConversations bounds the relative-sequence table: past it, it starts
// afresh (a conversation's next packet then shows absolute numbers, as a
// first one does).
const maxConversations = 1 << 16

type tcpKey struct {
	src, dst     netip.Addr
	sport, dport uint16
}

type tcpSeqs struct{ seq, ack uint32 }

// NewPrinter returns a printer with options o.
func NewPrinter(o TextOptions) *Printer {
	if o.Location == nil {
		o.Location = time.Local
	}
	return &Printer{o: o, conversations: map[tcpKey]tcpSeqs{}}
}

// Append appends the text of one packet (ending in a newline) to dst.
func (p *Printer) Append(dst []byte, timeNs int64, length int, data []byte) []byte {
	p.b = dst
	p.timestamp(timeNs)
	p.frame(length, data)
	if p.o.Hex > 0 || p.o.ASCII {
		from := 0
		if p.o.Hex < 2 {
			from = min(linkHeaderLen(data), len(data))
		}
		p.hexdump(data[from:])
	}
	p.b = append(p.b, '\n')
	return p.b
}

func (p *Printer) printf(format string, a ...any) { p.b = fmt.Appendf(p.b, format, a...) }
func (p *Printer) str(s string)                   { p.b = append(p.b, s...) }

func (p *Printer) timestamp(ns int64) {
	if !p.seen {
		p.first, p.prev, p.seen = ns, ns, true
	}
	frac := func(ns int64) string {
		if p.o.Nano {
			return fmt.Sprintf("%09d", ns%1e9)
		}
		return fmt.Sprintf("%06d", ns%1e9/1e3) // truncated, as tcpdump
	}
	delta := func(d int64) {
		sign := " "
		if d < 0 {
			sign, d = "-", -d
		}
		s := d / 1e9
		p.printf("%s%02d:%02d:%02d.%s ", sign, s/3600, s/60%60, s%60, frac(d))
	}
	switch p.o.Time {
	case 1:
	case 2:
		p.printf("%d.%s ", ns/1e9, frac(ns))
	case 3:
		delta(ns - p.prev)
	case 4:
		t := time.Unix(0, ns).In(p.o.Location)
		p.printf("%s.%s ", t.Format("2006-01-02 15:04:05"), frac(ns))
	case 5:
		delta(ns - p.first)
	default:
		t := time.Unix(0, ns).In(p.o.Location)
		p.printf("%s.%s ", t.Format("15:04:05"), frac(ns))
	}
	p.prev = ns
}

var etherNames = map[layers.EthernetType]string{
	layers.EthernetTypeIPv4: "IPv4", layers.EthernetTypeIPv6: "IPv6", layers.EthernetTypeARP: "ARP",
	layers.EthernetTypeDot1Q: "802.1Q", layers.EthernetTypeQinQ: "802.1Q-QinQ", layers.EthernetTypeLinkLayerDiscovery: "LLDP",
	0x9100: "802.1Q-9100", layers.EthernetTypeMPLSUnicast: "MPLS unicast",
}

func etherName(t layers.EthernetType) string {
	if n, ok := etherNames[t]; ok {
		return n
	}
	return "Unknown"
}

func isVLAN(t layers.EthernetType) bool {
	return t == layers.EthernetTypeDot1Q || t == layers.EthernetTypeQinQ || t == 0x9100
}

// linkHeaderLen is the Ethernet header with its VLAN tags: where -x starts.
func linkHeaderLen(d []byte) int {
	if len(d) < 14 {
		return len(d)
	}
	off := 12
	for off+4 <= len(d) && isVLAN(layers.EthernetType(binary.BigEndian.Uint16(d[off:]))) {
		off += 4
	}
	return off + 2
}

func (p *Printer) frame(length int, d []byte) {
	if len(d) < 14 {
		p.str("[|ether]")
		return
	}
	t := layers.EthernetType(binary.BigEndian.Uint16(d[12:]))
	_, known := etherNames[t]
	known = known || t < 0x600 // 802.3 length
	if p.o.Link || !known {
		p.printf("%s > %s, ", net.HardwareAddr(d[6:12]), net.HardwareAddr(d[0:6]))
		if t < 0x600 {
			p.printf("802.3, length %d: ", length)
		} else {
			p.printf("ethertype %s (0x%04x), length %d: ", etherName(t), uint16(t), length)
		}
	}
	off := 14
	for isVLAN(t) {
		if off+4 > len(d) {
			p.str("[|vlan]")
			return
		}
		tci := binary.BigEndian.Uint16(d[off-2+2:])
		t = layers.EthernetType(binary.BigEndian.Uint16(d[off+2:]))
		if p.o.Link {
			p.printf("vlan %d, p %d", tci&0xfff, tci>>13)
			if tci&0x1000 != 0 {
				p.str(", DEI")
			}
			p.printf(", ethertype %s (0x%04x), ", etherName(t), uint16(t))
		}
		off += 4
	}
	body := d[off:]
	switch t {
	case layers.EthernetTypeIPv4:
		if !p.o.Link {
			p.str("IP ")
		}
		p.ipv4(body)
	case layers.EthernetTypeIPv6:
		if !p.o.Link {
			p.str("IP6 ")
		}
		p.ipv6(body)
	case layers.EthernetTypeARP:
		if !p.o.Link {
			p.str("ARP, ")
		}
		p.arp(body)
	case layers.EthernetTypeLinkLayerDiscovery:
		p.printf("LLDP, length %d", len(body))
	default:
		if t < 0x600 {
			p.printf("LLC, length %d", len(body))
		} else if known {
			p.printf("ethertype %s (0x%04x), length %d", etherName(t), uint16(t), len(body))
		} else {
			p.printf("length %d", len(body))
		}
	}
}

func (p *Printer) arp(d []byte) {
	if len(d) < 28 || binary.BigEndian.Uint16(d[0:]) != 1 || binary.BigEndian.Uint16(d[2:]) != 0x0800 || d[4] != 6 || d[5] != 4 {
		p.printf("ARP, length %d", len(d))
		return
	}
	if p.o.Verbose > 0 {
		p.str("Ethernet (len 6), IPv4 (len 4), ")
	}
	sha, spa, tpa := net.HardwareAddr(d[8:14]), netip.AddrFrom4([4]byte(d[14:18])), netip.AddrFrom4([4]byte(d[24:28]))
	switch binary.BigEndian.Uint16(d[6:]) {
	case 1:
		p.printf("Request who-has %s tell %s", tpa, spa)
	case 2:
		p.printf("Reply %s is-at %s", spa, sha)
	default:
		p.printf("op %d", binary.BigEndian.Uint16(d[6:]))
	}
	p.printf(", length %d", len(d))
}

var ipProtoNames = map[uint8]string{1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6", 132: "SCTP"}

func protoName(n uint8) string {
	if s, ok := ipProtoNames[n]; ok {
		return s
	}
	return "unknown"
}

// ipv4 prints an IPv4 packet from its header on; the caller has printed
// "IP " (or the link header).
func (p *Printer) ipv4(d []byte) {
	if len(d) < 20 || d[0]>>4 != 4 {
		p.str(" [|ip]")
		return
	}
	hl := int(d[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(d[2:]))
	if hl < 20 || hl > len(d) || total < hl {
		p.printf("bad-hlen %d", hl)
		return
	}
	proto := d[9]
	frag := binary.BigEndian.Uint16(d[6:])
	off := int(frag&0x1fff) * 8
	src, dst := netip.AddrFrom4([4]byte(d[12:16])), netip.AddrFrom4([4]byte(d[16:20]))
	if p.o.Verbose > 0 {
		p.printf("(tos 0x%x", d[1]&^3)
		if ecn := d[1] & 3; ecn != 0 {
			p.str([]string{"", ",ECT(1)", ",ECT(0)", ",CE"}[ecn])
		}
		var fl []string
		if frag&0x2000 != 0 {
			fl = append(fl, "+")
		}
		if frag&0x4000 != 0 {
			fl = append(fl, "DF")
		}
		if frag&0x8000 != 0 {
			fl = append(fl, "rsvd")
		}
		if fl == nil {
			fl = []string{"none"}
		}
		p.printf(", ttl %d, id %d, offset %d, flags [%s], proto %s (%d), length %d", d[8], binary.BigEndian.Uint16(d[4:]),
			off, strings.Join(fl, ", "), protoName(proto), proto, total)
		if hl > 20 {
			p.printf(", options (%s)", ipv4Options(d[20:hl]))
		}
		p.str(")\n    ")
	}
	if p.o.Verbose == 0 && len(d) < total {
		p.printf("truncated-ip - %d bytes missing! ", total-len(d))
	}
	end := min(total, len(d))
	payload := d[hl:end]
	plen := total - hl
	if off > 0 {
		p.printf("%s > %s: ip-proto-%d", src, dst, proto)
		return
	}
	fragmented := frag&0x2000 != 0
	ip := ipHeader{src: src, dst: dst, v4: d[:hl], fragmented: fragmented}
	p.transport(ip, proto, payload, plen, "")
}

func ipv4Options(o []byte) string {
	var out []string
	for i := 0; i < len(o); {
		switch o[i] {
		case 0:
			out = append(out, "EOL")
			i = len(o)
			continue
		case 1:
			out = append(out, "NOP")
			i++
			continue
		}
		if i+1 >= len(o) || o[i+1] < 2 || i+int(o[i+1]) > len(o) {
			out = append(out, "[bad length]")
			break
		}
		n := int(o[i+1])
		switch o[i] {
		case 7:
			var addrs []string
			for j := i + 3; j+4 <= i+n; j += 4 {
				addrs = append(addrs, netip.AddrFrom4([4]byte(o[j:j+4])).String())
			}
			out = append(out, "RR "+strings.Join(addrs, ", "))
		default:
			out = append(out, fmt.Sprintf("unknown %d len %d", o[i], n))
		}
		i += n
	}
	return strings.Join(out, ",")
}

type ipHeader struct {
	src, dst   netip.Addr
	v4         []byte // the IPv4 header; nil for IPv6
	fragmented bool
}

// ipv6 prints an IPv6 packet with its extension headers.
func (p *Printer) ipv6(d []byte) {
	if len(d) < 40 || d[0]>>4 != 6 {
		p.str("[|ip6]")
		return
	}
	plen := int(binary.BigEndian.Uint16(d[4:]))
	next := d[6]
	src, dst := netip.AddrFrom16([16]byte(d[8:24])), netip.AddrFrom16([16]byte(d[24:40]))
	if p.o.Verbose > 0 {
		p.str("(")
		vtf := binary.BigEndian.Uint32(d[0:])
		if c := vtf >> 20 & 0xff; c != 0 {
			p.printf("class 0x%02x, ", c)
		}
		if f := vtf & 0xfffff; f != 0 {
			p.printf("flowlabel 0x%05x, ", f)
		}
		p.printf("hlim %d, next-header %s (%d) payload length: %d) ", d[7], ip6NextName(next), next, plen)
	}
	rest := d[40:min(len(d), 40+plen)]
	left := plen
	var prefix strings.Builder
	fragmented := false
	for {
		switch next {
		case 0, 60, 43:
			if len(rest) < 8 || int(rest[1]+1)*8 > len(rest) {
				p.printf("%s > %s: [|ip6]", src, dst)
				return
			}
			n := int(rest[1]+1) * 8
			prefix.WriteString(map[uint8]string{0: "HBH ", 60: "DSTOPT ", 43: "srcrt "}[next])
			if p.o.Verbose > 0 && next != 43 {
				prefix.WriteString(ip6Options(rest[2:n]))
			}
			next, rest, left = rest[0], rest[n:], left-n
			continue
		case 44:
			if len(rest) < 8 {
				p.printf("%s > %s: [|frag]", src, dst)
				return
			}
			fo := binary.BigEndian.Uint16(rest[2:])
			if p.o.Verbose > 0 {
				fmt.Fprintf(&prefix, "frag (0x%08x:%d|%d) ", binary.BigEndian.Uint32(rest[4:]), fo&^7, left-8)
			} else {
				fmt.Fprintf(&prefix, "frag (%d|%d) ", fo&^7, left-8)
			}
			if fo&^7 != 0 {
				p.printf("%s > %s: %s", src, dst, prefix.String())
				return
			}
			fragmented = fo&1 != 0
			next, rest, left = rest[0], rest[8:], left-8
			continue
		}
		break
	}
	ip := ipHeader{src: src, dst: dst, fragmented: fragmented}
	if prefix.Len() > 0 {
		// tcpdump: "src > dst: HBH sport > dport: ..."
		p.printf("%s > %s: %s", src, dst, prefix.String())
		p.transport(ip, next, rest, left, "noaddr")
		return
	}
	p.transport(ip, next, rest, left, "")
}

// ip6Options is tcpdump's -v text of hop-by-hop or destination options.
func ip6Options(o []byte) string {
	var b strings.Builder
	for i := 0; i < len(o); {
		if o[i] == 0 {
			b.WriteString("(pad1)")
			i++
			continue
		}
		if i+1 >= len(o) || i+2+int(o[i+1]) > len(o) {
			b.WriteString("[trunc]")
			break
		}
		n := int(o[i+1])
		switch o[i] {
		case 1:
			b.WriteString("(padn)")
		case 5:
			if n == 2 {
				fmt.Fprintf(&b, "(rtalert: 0x%04x) ", binary.BigEndian.Uint16(o[i+2:]))
			}
		default:
			fmt.Fprintf(&b, "(opt_type 0x%02x: len=%d)", o[i], n)
		}
		i += 2 + n
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	return b.String()
}

func ip6NextName(n uint8) string {
	switch n {
	case 0:
		return "Options"
	case 44:
		return "Fragment"
	case 43:
		return "Routing"
	}
	return protoName(n)
}

// transport prints what the IP header carries: plen bytes on the wire,
// d of them captured. mode "noaddr" prints ports without addresses (after
// IPv6 extension headers, as tcpdump).
func (p *Printer) transport(ip ipHeader, proto uint8, d []byte, plen int, mode string) {
	addr := func(a netip.Addr, port int) string {
		if mode == "noaddr" {
			if port < 0 {
				return ""
			}
			return strconv.Itoa(port)
		}
		if port < 0 {
			return a.String()
		}
		return a.String() + "." + strconv.Itoa(port)
	}
	hosts := func() {
		if mode != "noaddr" {
			p.printf("%s > %s: ", ip.src, ip.dst)
		}
	}
	switch proto {
	case 6:
		if len(d) < 4 {
			hosts()
			p.str("[|tcp]")
			return
		}
		if len(d) < 20 {
			p.printf("%s > %s:  [|tcp]", addr(ip.src, int(binary.BigEndian.Uint16(d[0:]))), addr(ip.dst, int(binary.BigEndian.Uint16(d[2:]))))
			return
		}
		sport, dport := binary.BigEndian.Uint16(d[0:]), binary.BigEndian.Uint16(d[2:])
		p.printf("%s > %s: ", addr(ip.src, int(sport)), addr(ip.dst, int(dport)))
		p.tcp(ip, d, plen)
	case 17:
		if len(d) < 8 {
			hosts()
			p.str("[|udp]")
			return
		}
		sport, dport := binary.BigEndian.Uint16(d[0:]), binary.BigEndian.Uint16(d[2:])
		p.printf("%s > %s: ", addr(ip.src, int(sport)), addr(ip.dst, int(dport)))
		ulen := int(binary.BigEndian.Uint16(d[4:]))
		if p.o.Verbose > 0 && !ip.fragmented && (ip.v4 == nil || p.o.Verbose > 1) && ulen >= 8 && ulen <= len(d) {
			if sum := binary.BigEndian.Uint16(d[6:]); ip.v4 != nil && sum == 0 {
				p.str("[no cksum] ")
			} else if l4Checksum(ip, 17, d[:ulen]) == 0 {
				p.str("[udp sum ok] ")
			} else {
				p.printf("[bad udp cksum 0x%04x -> 0x%04x!] ", sum, correctSum(ip, 17, d[:ulen], 6))
			}
		}
		p.printf("UDP, length %d", ulen-8)
	case 1:
		hosts()
		p.icmp(d, plen)
	case 58:
		hosts()
		p.icmp6(ip, d, plen)
	default:
		hosts()
		if proto == 47 && len(d) >= 4 && d[1]&7 == 0 {
			// GRE's payload is not decoded: tcpdump's words for an unknown one
			gp := binary.BigEndian.Uint16(d[2:])
			switch {
			case p.o.Verbose > 0:
				p.str("GREv0, Flags [none]")
				if p.o.Link {
					p.printf(", proto unknown (0x%04x)", gp)
				}
				p.printf(", length %d\n\tgre-proto-0x%x", plen, gp)
			case p.o.Link:
				p.printf("GREv0, proto unknown (0x%04x), length %d: gre-proto-0x%x", gp, plen, gp)
			default:
				p.printf("GREv0, length %d: gre-proto-0x%x", plen, gp)
			}
			return
		}
		p.printf("ip-proto-%d %d", proto, plen)
	}
}

// tcpFlags is tcpdump's order and letters.
var tcpFlags = []struct {
	bit    byte
	letter byte
}{{0x01, 'F'}, {0x02, 'S'}, {0x04, 'R'}, {0x08, 'P'}, {0x10, '.'}, {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}}

func (p *Printer) tcp(ip ipHeader, d []byte, plen int) {
	hl := int(d[12]>>4) * 4
	flags := d[13]
	seq, ack := binary.BigEndian.Uint32(d[4:]), binary.BigEndian.Uint32(d[8:])
	win, urp := binary.BigEndian.Uint16(d[14:]), binary.BigEndian.Uint16(d[18:])
	sport, dport := binary.BigEndian.Uint16(d[0:]), binary.BigEndian.Uint16(d[2:])
	if p.o.Quick {
		p.printf("tcp %d", plen-hl)
		return
	}
	p.str("Flags [")
	if flags == 0 && d[12]&1 == 0 {
		p.str("none")
	}
	for _, f := range tcpFlags {
		if flags&f.bit != 0 {
			p.b = append(p.b, f.letter)
		}
	}
	if d[12]&1 != 0 { // AE (AccECN)
		p.b = append(p.b, 'e')
	}
	p.str("]")
	if hl < 20 {
		p.printf(", bad hdr length %d - too short, < 20", hl)
		return
	}
	// Relative sequence numbers, as tcpdump: from the first packet with
	// ACK set of a conversation (or its SYN); the key is ordered so both
	// directions share it.
	var thseq, thack uint32
	rev := false
	if !p.o.Absolute && flags&0x10 != 0 {
		rev = sport > dport || (sport == dport && ip.src.Compare(ip.dst) > 0)
		k := tcpKey{ip.src, ip.dst, sport, dport}
		if rev {
			k = tcpKey{ip.dst, ip.src, dport, sport}
		}
		th, ok := p.conversations[k]
		if !ok || flags&0x02 != 0 {
			if rev {
				th = tcpSeqs{seq: ack - 1, ack: seq}
			} else {
				th = tcpSeqs{seq: seq, ack: ack - 1}
			}
			if len(p.conversations) >= maxConversations {
				clear(p.conversations)
			}
			p.conversations[k] = th
		} else if rev {
			seq, ack = seq-th.ack, ack-th.seq
		} else {
			seq, ack = seq-th.seq, ack-th.ack
		}
		thseq, thack = th.seq, th.ack
	}
	if hl > plen {
		p.printf(" [bad hdr length %d - too long, > %d]", hl, plen)
		return
	}
	if p.o.Verbose > 0 && !ip.fragmented && plen <= len(d) {
		sum := binary.BigEndian.Uint16(d[16:])
		if c := l4Checksum(ip, 6, d[:plen]); c == 0 {
			p.printf(", cksum 0x%04x (correct)", sum)
		} else {
			p.printf(", cksum 0x%04x (incorrect -> 0x%04x)", sum, correctSum(ip, 6, d[:plen], 16))
		}
	}
	length := plen - hl
	if p.o.Verbose > 1 || length > 0 || flags&0x07 != 0 {
		p.printf(", seq %d", seq)
		if length > 0 {
			p.printf(":%d", seq+uint32(length))
		}
	}
	if flags&0x10 != 0 {
		p.printf(", ack %d", ack)
	}
	p.printf(", win %d", win)
	if flags&0x20 != 0 {
		p.printf(", urg %d", urp)
	}
	if hl > 20 {
		if hl > len(d) {
			p.str(", options [|tcp]")
			return
		}
		p.str(", options [")
		p.tcpOptions(d[20:hl], rev, thseq, thack)
		p.str("]")
	}
	p.printf(", length %d", length)
}

func (p *Printer) tcpOptions(o []byte, rev bool, thseq, thack uint32) {
	for i := 0; i < len(o); {
		if i > 0 {
			p.str(",")
		}
		kind := o[i]
		if kind == 0 || kind == 1 {
			p.str([]string{"eol", "nop"}[kind])
			i++
			continue
		}
		if i+1 >= len(o) || o[i+1] < 2 || i+int(o[i+1]) > len(o) {
			p.str("[bad opt]")
			return
		}
		n := int(o[i+1])
		v := o[i+2 : i+n]
		switch {
		case kind == 2 && len(v) == 2:
			p.printf("mss %d", binary.BigEndian.Uint16(v))
		case kind == 3 && len(v) == 1:
			p.printf("wscale %d", v[0])
		case kind == 4:
			p.str("sackOK")
		case kind == 5 && len(v)%8 == 0:
			p.printf("sack %d ", len(v)/8)
			for j := 0; j < len(v); j += 8 {
				s, e := binary.BigEndian.Uint32(v[j:]), binary.BigEndian.Uint32(v[j+4:])
				if rev {
					s, e = s-thseq, e-thseq
				} else {
					s, e = s-thack, e-thack
				}
				p.printf("{%d:%d}", s, e)
			}
		case kind == 8 && len(v) == 8:
			p.printf("TS val %d ecr %d", binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]))
		case kind == 30:
			p.str("mptcp")
		case kind == 34:
			p.str("tfo")
		default:
			p.printf("unknown-%d", kind)
			if len(v) > 0 {
				p.printf(" 0x%x", v)
			}
		}
		i += n
	}
}

var icmpUnreach = []string{
	"net %s unreachable", "host %s unreachable", "", "", "",
	"%s unreachable - source route failed", "net %s unreachable - unknown", "host %s unreachable - unknown",
	"%s unreachable - source host isolated", "net %s unreachable - admin prohibited",
	"host %s unreachable - admin prohibited", "net %s unreachable - tos prohibited",
	"host %s unreachable - tos prohibited", "host %s unreachable - admin prohibited filter",
	"host %s unreachable - host precedence violation", "host %s unreachable - precedence cutoff",
}

var icmpNames = map[uint8]string{0: "echo reply", 4: "source quench", 8: "echo request", 10: "router solicitation",
	13: "time stamp request", 14: "time stamp reply", 15: "information request", 16: "information reply",
	17: "address mask request", 9: "router advertisement"}

// icmp prints an ICMP message of plen bytes (d captured).
func (p *Printer) icmp(d []byte, plen int) {
	if len(d) < 4 {
		p.str("[|icmp]")
		return
	}
	typ, code := d[0], d[1]
	p.str("ICMP ")
	// the quoted header of an error
	var qdst netip.Addr
	var qproto uint8
	var qdport int = -1
	var quoted []byte
	if len(d) >= 28 && d[8]>>4 == 4 {
		quoted = d[8:]
		qdst, qproto = netip.AddrFrom4([4]byte(quoted[16:20])), quoted[9]
		if hl := int(quoted[0]&0xf) * 4; len(quoted) >= hl+4 {
			qdport = int(binary.BigEndian.Uint16(quoted[hl+2:]))
		}
	}
	switch {
	case (typ == 0 || typ == 8) && len(d) >= 8:
		p.printf("echo %s, id %d, seq %d", map[uint8]string{0: "reply", 8: "request"}[typ],
			binary.BigEndian.Uint16(d[4:]), binary.BigEndian.Uint16(d[6:]))
	case typ == 3 && quoted != nil:
		switch {
		case code == 2:
			p.printf("%s protocol %d unreachable", qdst, qproto)
		case code == 3 && qdport >= 0:
			switch qproto {
			case 6:
				p.printf("%s tcp port %d unreachable", qdst, qdport)
			case 17:
				p.printf("%s udp port %d unreachable", qdst, qdport)
			default:
				p.printf("%s protocol %d port %d unreachable", qdst, qproto, qdport)
			}
		case code == 4:
			if mtu := binary.BigEndian.Uint16(d[6:]); mtu != 0 {
				p.printf("%s unreachable - need to frag (mtu %d)", qdst, mtu)
			} else {
				p.printf("%s unreachable - need to frag", qdst)
			}
		case int(code) < len(icmpUnreach) && icmpUnreach[code] != "":
			p.printf(icmpUnreach[code], qdst)
		default:
			p.printf("#%d %s unreachable", code, qdst)
		}
	case typ == 11:
		switch code {
		case 0:
			p.str("time exceeded in-transit")
		case 1:
			p.str("ip reassembly time exceeded")
		default:
			p.printf("time exceeded-#%d", code)
		}
	case typ == 5 && quoted != nil && len(d) >= 8:
		p.printf("redirect %s to %s %s", qdst, map[bool]string{true: "host", false: "net"}[code&1 == 1], netip.AddrFrom4([4]byte(d[4:8])))
	case typ == 12:
		if code != 0 {
			p.printf("parameter problem - code %d", code)
		} else {
			p.printf("parameter problem - octet %d", d[4])
		}
	default:
		if n, ok := icmpNames[typ]; ok {
			p.str(n)
		} else {
			p.printf("type-#%d", typ)
		}
	}
	p.printf(", length %d", plen)
	if p.o.Verbose > 0 && quoted != nil && (typ == 3 || typ == 4 || typ == 5 || typ == 11 || typ == 12) {
		p.str("\n\t")
		if !p.o.Link {
			p.str("IP ")
		}
		p.ipv4(quoted)
	}
}

var icmp6Names = map[uint8]string{1: "destination unreachable", 2: "packet too big", 3: "time exceeded in-transit",
	4: "parameter problem", 128: "echo request", 129: "echo reply", 130: "multicast listener query",
	131: "multicast listener report", 132: "multicast listener done", 133: "router solicitation",
	134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect",
	143: "multicast listener report v2"}

var icmp6Unreach = []string{"unreachable route", "unreachable prohibited", "beyond scope", "unreachable address", "unreachable port"}

func (p *Printer) icmp6(ip ipHeader, d []byte, plen int) {
	if len(d) < 4 {
		p.str("[|icmp6]")
		return
	}
	typ, code := d[0], d[1]
	if p.o.Verbose > 0 && !ip.fragmented && plen <= len(d) {
		if l4Checksum(ip, 58, d[:plen]) == 0 {
			p.str("[icmp6 sum ok] ")
		} else {
			p.printf("[bad icmp6 cksum 0x%04x!] ", binary.BigEndian.Uint16(d[2:]))
		}
	}
	p.str("ICMP6, ")
	if n, ok := icmp6Names[typ]; ok {
		p.str(n)
	} else {
		p.printf("type-#%d", typ)
	}
	lengthLate := false // -v prints some lengths before the details
	switch {
	case (typ == 128 || typ == 129) && len(d) >= 8:
		p.printf(", id %d, seq %d", binary.BigEndian.Uint16(d[4:]), binary.BigEndian.Uint16(d[6:]))
		if p.o.Verbose > 0 {
			return
		}
	case typ == 1:
		if int(code) < len(icmp6Unreach) {
			p.printf(", %s", icmp6Unreach[code])
		} else {
			p.printf(", unknown unreach code (%d)", code)
		}
		if len(d) >= 48 && d[8]>>4 == 6 {
			q := d[8:]
			qdst := netip.AddrFrom16([16]byte(q[24:40]))
			if code == 4 && len(q) >= 44 && (q[6] == 6 || q[6] == 17) {
				p.printf(", %s %s port %d", qdst, map[uint8]string{6: "tcp", 17: "udp"}[q[6]], binary.BigEndian.Uint16(q[42:]))
			} else {
				p.printf(", %s", qdst)
			}
		}
		if p.o.Verbose > 0 {
			return
		}
	case typ == 2 && len(d) >= 8:
		p.printf(", mtu %d", binary.BigEndian.Uint32(d[4:]))
	case (typ == 135 || typ == 136) && len(d) >= 24:
		tgt := netip.AddrFrom16([16]byte(d[8:24]))
		lengthLate = p.o.Verbose > 0
		if lengthLate {
			p.printf(", length %d", plen)
		}
		if typ == 135 {
			p.printf(", who has %s", tgt)
		} else {
			p.printf(", tgt is %s", tgt)
		}
	case typ == 134 || typ == 133:
		lengthLate = p.o.Verbose > 0
		if lengthLate {
			p.printf(", length %d", plen)
		}
	}
	if !lengthLate {
		p.printf(", length %d", plen)
	}
	if p.o.Verbose == 0 {
		return
	}
	var opts []byte
	switch {
	case typ == 134 && len(d) >= 16:
		p.printf("\n\thop limit %d, Flags [%s], pref %s, router lifetime %ds, reachable time %dms, retrans timer %dms",
			d[4], raFlags(d[5]), []string{"medium", "high", "rsv", "low"}[d[5]>>3&3], binary.BigEndian.Uint16(d[6:]),
			binary.BigEndian.Uint32(d[8:]), binary.BigEndian.Uint32(d[12:]))
		opts = d[16:]
	case (typ == 135 || typ == 136) && len(d) >= 24:
		opts = d[24:]
	case typ == 133 && len(d) >= 8:
		opts = d[8:]
	}
	for len(opts) >= 8 {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			break
		}
		switch opts[0] {
		case 1, 2:
			p.printf("\n\t  %s link-address option (%d), length %d (%d): %s", map[byte]string{1: "source", 2: "destination"}[opts[0]],
				opts[0], n, opts[1], net.HardwareAddr(opts[2:8]))
		default:
			p.printf("\n\t  option (%d), length %d (%d)", opts[0], n, opts[1])
		}
		if p.o.Verbose > 1 {
			saved := p.o.ASCII
			p.o.ASCII = false
			mark := len(p.b)
			p.hexdump(opts[2:n])
			p.b = append(p.b[:mark], strings.ReplaceAll(string(p.b[mark:]), "\n\t0x", "\n\t    0x")...)
			p.o.ASCII = saved
		}
		opts = opts[n:]
	}
}

func raFlags(f byte) string {
	var out []string
	for _, x := range []struct {
		bit  byte
		name string
	}{{0x80, "managed"}, {0x40, "other stateful"}, {0x20, "home agent"}, {0x10, "router pref"}, {0x08, "proxy"}} {
		if f&x.bit != 0 && x.bit != 0x10 {
			out = append(out, x.name)
		}
	}
	if out == nil {
		return "none"
	}
	return strings.Join(out, ", ")
}

// l4Checksum is the ones' complement sum over the pseudo-header and the
// segment: 0 when the segment's checksum is right.
func l4Checksum(ip ipHeader, proto uint8, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := ip.src.AsSlice(), ip.dst.AsSlice()
	add(s)
	add(d)
	sum += uint32(proto) + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// correctSum is the checksum the segment should carry in its field at off.
func correctSum(ip ipHeader, proto uint8, seg []byte, off int) uint16 {
	c := append([]byte(nil), seg...)
	c[off], c[off+1] = 0, 0
	return l4Checksum(ip, proto, c)
}

// hexdump prints d as tcpdump -x/-X: 16 bytes a line, in 2-byte groups,
// with the characters after them (-X).
func (p *Printer) hexdump(d []byte) {
	for off := 0; off < len(d); off += 16 {
		line := d[off:min(off+16, len(d))]
		p.printf("\n\t0x%04x: ", off)
		n := 0
		for i := 0; i < len(line); i += 2 {
			if i+1 < len(line) {
				p.printf(" %02x%02x", line[i], line[i+1])
				n += 5
			} else {
				p.printf(" %02x", line[i])
				n += 3
			}
		}
		if p.o.ASCII {
			p.str(strings.Repeat(" ", 40-n+2))
			for _, c := range line {
				if c > 0x20 && c < 0x7f { // tcpdump prints a space as '.'
					p.b = append(p.b, c)
				} else {
					p.b = append(p.b, '.')
				}
			}
		}
	}
}
