package e2e

import (
	"context"
	be "encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/testbed"
)

// blindForger sends, from the target's side of the link, answers to probes
// it never saw: to every source port of the scanner's range, for every
// address of a prefix, with every field it cannot know (sequence numbers,
// IP IDs, checksums, DNS IDs, request-ids) drawn at random. Bounded in
// rounds and time; only 198.18.0.0/15 addresses are forged.
type blindForger struct {
	fd      int
	ifindex int
	sent    uint64
}

// newBlindForger opens a raw AF_PACKET socket on the target's end of tb's
// link (in its namespace).
func newBlindForger(tb *testbed.Testbed) (*blindForger, error) {
	f := &blindForger{fd: -1}
	err := testbed.Do(tb.TargetNS(), func() error {
		ifc, err := net.InterfaceByName(testbed.TargetIf)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		f.fd, f.ifindex = fd, ifc.Index
		return nil
	})
	return f, err
}

func (f *blindForger) close() { unix.Close(f.fd) }

func (f *blindForger) send(fr testpkt.Frame) error {
	fr.SrcMAC, fr.DstMAC = testbed.TargetMAC, testbed.ScanMAC
	b := testpkt.Build(fr)
	sa := &unix.SockaddrLinklayer{Ifindex: f.ifindex, Halen: 6}
	copy(sa.Addr[:], testbed.ScanMAC)
	for {
		err := unix.Sendto(f.fd, b, 0, sa)
		if err == unix.ENOBUFS || err == unix.EAGAIN {
			time.Sleep(50 * time.Microsecond) // the veth queue is full: let it drain
			continue
		}
		if err == nil {
			f.sent++
		}
		return err
	}
}

// round sends one forgery of each kind for every address of prefix and
// every source port in lo-hi, unless ctx ends first.
func (f *blindForger) round(ctx context.Context, prefix netip.Prefix, lo, hi uint16, rnd *rand.Rand) error {
	us := testbed.ScanIP
	dnsLen := 8 + len(probe.PayloadFor(53).Data)
	for a := prefix.Addr(); prefix.Contains(a); a = a.Next() {
		if !netip.MustParsePrefix("198.18.0.0/15").Contains(a) {
			return fmt.Errorf("forger: %s is outside 198.18.0.0/15", a)
		}
		if ctx.Err() != nil {
			return nil
		}
		frames := []testpkt.Frame{
			// An echo reply from a host that may be silent.
			{Src: a, Dst: us, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: uint16(rnd.Uint32()), Seq: uint16(rnd.Uint32())}},
			// Host unreachable quoting a guessed echo request.
			{Src: a, Dst: us, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)},
				Payload: quotedGuess(us, a, 1, rnd, func(l4 []byte) { l4[0] = 8; be.BigEndian.PutUint32(l4[4:], rnd.Uint32()) })},
		}
		for p := uint32(lo); p <= uint32(hi); p++ {
			sport := uint16(p)
			frames = append(frames,
				// UDP 161 is closed: a datagram "from the agent" says open.
				testpkt.Frame{Src: a, Dst: us, L4: &layers.UDP{SrcPort: 161, DstPort: layers.UDPPort(sport)},
					Payload: snmpGuess(rnd.Uint32())},
				// UDP 53 is open: a port unreachable quoting a guessed probe says closed.
				testpkt.Frame{Src: a, Dst: us, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)},
					Payload: quotedGuess(us, a, 17, rnd, func(l4 []byte) {
						be.BigEndian.PutUint16(l4, sport)
						be.BigEndian.PutUint16(l4[2:], 53)
						be.BigEndian.PutUint16(l4[4:], uint16(dnsLen))
						be.BigEndian.PutUint16(l4[6:], uint16(rnd.Uint32()))
					})},
				// TCP 9000 is closed: a SYN-ACK says open; 22 is open: a RST says closed.
				testpkt.Frame{Src: a, Dst: us, L4: testpkt.TCP(9000, sport, rnd.Uint32(), rnd.Uint32(), "SA")},
				testpkt.Frame{Src: a, Dst: us, L4: testpkt.TCP(22, sport, 0, rnd.Uint32(), "RA")},
			)
		}
		for _, fr := range frames {
			if err := f.send(fr); err != nil {
				return fmt.Errorf("forger: send: %w", err)
			}
		}
	}
	return nil
}

// quotedGuess is the IPv4 header and 8 L4 bytes of a probe from us to
// target that the forger guesses: a random IP ID, L4 bytes from fill.
func quotedGuess(us, target netip.Addr, proto uint8, rnd *rand.Rand, fill func(l4 []byte)) []byte {
	q := make([]byte, 28)
	q[0] = 0x45
	be.BigEndian.PutUint16(q[2:], 28)
	be.BigEndian.PutUint16(q[4:], uint16(rnd.Uint32()))
	q[8], q[9] = 64, proto
	s, d := us.As4(), target.As4()
	copy(q[12:], s[:])
	copy(q[16:], d[:])
	fill(q[20:])
	return q
}

// snmpGuess is an SNMP GetResponse with request-id rid.
func snmpGuess(rid uint32) []byte {
	b := []byte{0x30, 0x1a, 0x02, 0x01, 0x01, 0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c', 0xa2, 0x0d,
		0x02, 0x04, 0, 0, 0, 0, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00}
	be.BigEndian.PutUint32(b[17:], rid)
	return b
}

// TestBlindForgeryGivesExactlyTheTruth scans a /24 on TCP 22 (open) and 9000
// (closed), UDP 53 (open) and 161 (closed) and with echo requests while the
// target side forges, blindly, the opposite answer to every source port of
// the scanner's range for every address (the trial of issue 24 that made
// 457 of 512 UDP results wrong): the results must be exactly the truth.
func TestBlindForgeryGivesExactlyTheTruth(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.0.0/24"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 161}, {proto: "icmp"}}
	want := mixedTruth(tb.Config, prefix, probes)

	forger, err := newBlindForger(tb)
	if err != nil {
		t.Fatalf("forger: %v", err)
	}
	defer forger.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var forgeErr error
	rounds := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(1, 2))
		// Let the scanner attach, then forge for as long as it listens,
		// at most 3 rounds (about 800k frames).
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			return
		}
		for ; rounds < 3 && ctx.Err() == nil; rounds++ {
			if forgeErr = forger.round(ctx, netip.MustParsePrefix(prefix), 40000, 40255, rnd); forgeErr != nil {
				return
			}
		}
	}()
	// Slow enough that the forgeries overlap the probes and their answers.
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", "22,9000,U:53,U:161", "--ping",
		"--rate", "400", "--wait", "2s", "--source-port", "40000-40255")
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if forgeErr != nil {
		t.Fatal(forgeErr)
	}
	t.Logf("forger: %d frames in %d rounds; scan: invalid_cookie %d, conflicts %d, weak %d", forger.sent, rounds,
		st.InvalidCookie, st.Conflicts, st.WeakResults)
	checkStates(t, results, want)
	counts := map[string]uint64{}
	for _, s := range want {
		counts[s]++
	}
	if st.Open != counts["open"] || st.Closed != counts["closed"] || st.Up != counts["up"] || st.Conflicts != 0 || st.WeakResults != 0 {
		t.Errorf("stats open %d closed %d up %d conflicts %d weak %d: truth %v, no conflict, no weak result",
			st.Open, st.Closed, st.Up, st.Conflicts, st.WeakResults, counts)
	}
	// The forgeries reached the scanner's XDP program while it listened:
	// without them the test would prove nothing.
	if st.InvalidCookie < 50000 {
		t.Errorf("only %d forged answers were checked and refused (of %d sent): the forger missed the scan", st.InvalidCookie, forger.sent)
	}
}

// TestConfirmRetriesWeakUDPResults scans UDP ports whose answers echo
// nothing (7, an echo service, and 9, closed) with --confirm: each result
// rests on the source port (and on IPv4 the IP ID), so each is re-probed
// under a fresh cookie after the wait and printed once, confirmed, only
// when both answers agree; the results are exactly the truth.
func TestConfirmRetriesWeakUDPResults(t *testing.T) {
	tb := upTestbed(t, testbed.Config{UDPOpenPorts: []uint16{7}})
	const prefix = "198.18.0.192/26" // 48 answering addresses, 16 silent
	probes := []probeKey{{proto: "udp", port: 7}, {proto: "udp", port: 9}}
	want := mixedTruth(tb.Config, prefix, probes)
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", "U:7,U:9", "--confirm", "--rate", "5000", "--wait", "1s")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	for _, r := range results {
		if !strings.Contains(r.Reason, ";confirmed") {
			t.Errorf("%s:%d %s: reason %q, want a confirmed result", r.IP, r.Port, r.State, r.Reason)
		}
	}
	if st.WeakResults != uint64(countState(want, 7, "open")) || st.Unconfirmed != 0 || st.Conflicts != 0 {
		t.Errorf("stats weak %d unconfirmed %d conflicts %d, want %d weak (the open ones: 8+8 bits), none unconfirmed", st.WeakResults, st.Unconfirmed, st.Conflicts, countState(want, 7, "open"))
	}
}

// countState counts the pairs on port whose truth is state.
func countState(want map[probeKey]string, port uint16, state string) int {
	n := 0
	for k, s := range want {
		if k.port == port && s == state {
			n++
		}
	}
	return n
}
