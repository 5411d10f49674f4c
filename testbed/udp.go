package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/ipv4"
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
	conn *ipv4.PacketConn
	raw  net.PacketConn
	port uint16
	done chan struct{}
}

func listenUDP(port uint16) (*udpService, error) {
	c, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return nil, err
	}
	// One goroutine answers a whole range: a deep receive queue rides out a
	// scan's bursts (RcvbufErrors in the target's /proc/net/snmp otherwise).
	// SO_RCVBUFFORCE, not SO_RCVBUF: the testbed is root, and rmem_max is
	// the host's, not the namespace's.
	if sc, err := c.(*net.UDPConn).SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		})
	}
	p := ipv4.NewPacketConn(c)
	if err := p.SetControlMessage(ipv4.FlagDst, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("IP_PKTINFO on UDP port %d: %w", port, err)
	}
	s := &udpService{conn: p, raw: c, port: port, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

func (s *udpService) serve() {
	defer close(s.done)
	buf := make([]byte, 2048)
	out := make([]byte, 2048)
	for {
		n, cm, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		reply := answer(s.port, buf[:n], out)
		if reply == nil {
			continue
		}
		var wcm *ipv4.ControlMessage
		if cm != nil && cm.Dst != nil {
			wcm = &ipv4.ControlMessage{Src: cm.Dst}
		}
		s.conn.WriteTo(reply, wcm, from)
	}
}

func (s *udpService) close() {
	s.raw.Close()
	<-s.done
}

// answer builds the service's reply to req in out, or nil for no reply.
func answer(port uint16, req, out []byte) []byte {
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
