package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// UDP services of the kernel target. Each answers on every address of the
// range (AnyIP), from the address the probe was sent to: a reply from the
// link address would not match the probe, as on a real network.
//
//	53   DNS: echoes the transaction ID and the question, answers REFUSED
//	     (BIND's answer to version.bind with the version hidden)
//	123  NTP: a v4 server reply, the request's transmit timestamp copied
//	     into the origin timestamp (RFC 5905)
//	any other UDPOpenPorts entry: echoes the datagram back (RFC 862)
type udpService struct {
	conn pktConn
	raw  net.PacketConn
	port uint16
	done chan struct{}
}

// pktConn reads datagrams with the address they were sent to, and answers
// from that address: ipv4.PacketConn (IP_PKTINFO) or ipv6.PacketConn
// (IPV6_RECVPKTINFO) behind one face. Two small adapters rather than one
// generic type: ipv4.ControlMessage and ipv6.ControlMessage share no
// interface, and Go cannot reach a field (Dst, Src) through a type
// parameter, so a generic version needs more code than these.
type pktConn interface {
	read(b []byte) (n int, dst net.IP, from net.Addr, err error)
	write(b []byte, src net.IP, to net.Addr)
}

type pktConn4 struct{ *ipv4.PacketConn }

func (c pktConn4) read(b []byte) (int, net.IP, net.Addr, error) {
	n, cm, from, err := c.ReadFrom(b)
	if cm == nil {
		return n, nil, from, err
	}
	return n, cm.Dst, from, err
}

func (c pktConn4) write(b []byte, src net.IP, to net.Addr) {
	c.WriteTo(b, &ipv4.ControlMessage{Src: src}, to)
}

type pktConn6 struct{ *ipv6.PacketConn }

func (c pktConn6) read(b []byte) (int, net.IP, net.Addr, error) {
	n, cm, from, err := c.ReadFrom(b)
	if cm == nil {
		return n, nil, from, err
	}
	return n, cm.Dst, from, err
}

func (c pktConn6) write(b []byte, src net.IP, to net.Addr) {
	c.WriteTo(b, &ipv6.ControlMessage{Src: src}, to)
}

func listenUDP(port uint16, v6 bool) (*udpService, error) {
	network, any := "udp4", "0.0.0.0"
	if v6 {
		network, any = "udp6", "::"
	}
	c, err := net.ListenPacket(network, net.JoinHostPort(any, fmt.Sprint(port)))
	if err != nil {
		return nil, err
	}
	// One goroutine answers a whole range: a deep receive queue rides out a
	// scan's bursts (RcvbufErrors in the target's /proc/net/snmp otherwise).
	// SO_RCVBUFFORCE, not SO_RCVBUF: the testbed is root, and rmem_max is
	// the host's, not the namespace's. IPv6 checks a reply's source against
	// the configured addresses, which AnyIP ones are not: IPV6_FREEBIND
	// lets the service answer from the probed address all the same.
	if sc, err := c.(*net.UDPConn).SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
			if v6 {
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
			}
		})
	}
	var conn pktConn
	if v6 {
		p := ipv6.NewPacketConn(c)
		err = p.SetControlMessage(ipv6.FlagDst, true)
		conn = pktConn6{p}
	} else {
		p := ipv4.NewPacketConn(c)
		err = p.SetControlMessage(ipv4.FlagDst, true)
		conn = pktConn4{p}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("packet info on %s port %d: %w", network, port, err)
	}
	s := &udpService{conn: conn, raw: c, port: port, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

func (s *udpService) serve() {
	defer close(s.done)
	buf := make([]byte, 2048)
	out := make([]byte, 2048)
	for {
		n, dst, from, err := s.conn.read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if reply := Answer(s.port, buf[:n], out); reply != nil {
			s.conn.write(reply, dst, from)
		}
	}
}

func (s *udpService) close() {
	s.raw.Close()
	<-s.done
}

// Answer builds the reply of the target's service on port to req in out,
// or nil for no reply. Tests use it to answer probes exactly as the
// testbed does.
func Answer(port uint16, req, out []byte) []byte {
	switch port {
	case 53:
		if len(req) < 12 || req[2]&0x80 != 0 {
			return nil // not a query
		}
		n := copy(out, req)
		out[2] = 0x80 | req[2]&0x79 // QR, opcode and RD kept
		out[3] = 5                  // REFUSED
		binary.BigEndian.PutUint16(out[6:], 0)
		binary.BigEndian.PutUint16(out[8:], 0)
		binary.BigEndian.PutUint16(out[10:], 0)
		return out[:n]
	case 123:
		if len(req) < 48 || req[0]&7 != 3 {
			return nil // not a client request
		}
		r := out[:48]
		clear(r)
		r[0] = 0x24 // LI 0, VN 4, mode 4 (server)
		r[1] = 2    // stratum
		copy(r[24:32], req[40:48])
		now := ntpTime(time.Now())
		binary.BigEndian.PutUint64(r[32:], now) // receive
		binary.BigEndian.PutUint64(r[40:], now) // transmit
		return r
	default:
		return out[:copy(out, req)]
	}
}

func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}
