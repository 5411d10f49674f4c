package loader_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

// TestScanProgramConfirmRetry: with UDPConfirm, answers to a UDP probe's
// confirming retry (a fresh cookie) are accepted and marked, reported
// apart from the probe's own answer; without it they are forgeries.
func TestScanProgramConfirmRetry(t *testing.T) {
	for _, tc := range []struct {
		port uint16
		tgt  netip.Addr
	}{{53, target4}, {9999, target4}, {9999, collidingTarget(t, 9999)}} {
		port, tgt := tc.port, tc.tgt
		buf := make([]byte, probe.MaxFrame)
		n := probe.NewUDP(testpkt.SrcMAC, testpkt.DstMAC, scanner4, 40000, 40255, probe.PayloadFor(port), testKey).FillConfirm(buf, tgt, port)
		retry := buf[14:n]
		sport := binary.BigEndian.Uint16(retry[20:])
		answer := testpkt.Build(testpkt.Frame{Src: tgt, Dst: scanner4, L4: udpLayer(port, sport), Payload: svcAnswer(port, retry[28:], false)})
		quote := testpkt.Build(quotingErrorRaw(tgt, scanner4, 3, 3, retry[:28]))
		firstSport, req := udpPayloadOf(scanner4, tgt, port)
		first := testpkt.Build(testpkt.Frame{Src: tgt, Dst: scanner4, L4: udpLayer(port, firstSport), Payload: svcAnswer(port, req, false)})
		if sport == firstSport {
			t.Fatalf("the retry of %s:%d is sent from the probe's own source port %d", tgt, port, sport)
		}
		for _, confirm := range []bool{false, true} {
			bpftest.Require(t)
			s, err := loader.LoadScan(loader.ScanConfig{
				SourceIPv4: scanner4, SourceIPv6: scanner6, SourcePortLo: 40000, SourcePortHi: 40255,
				CookieKey: [2]uint64(testKey), RingBytes: 1 << 16, DedupEntries: 1 << 12, UDPEchoes: probe.UDPEchoes(), UDPConfirm: confirm,
			})
			if err != nil {
				t.Fatalf("load with UDPConfirm %v: %v", confirm, err)
			}
			defer s.Close()
			for _, c := range []struct {
				name        string
				frame       []byte
				want        uint32
				wantConfirm uint8
			}{
				{"the probe's answer", first, xdpDrop, 0},
				{"the retry's answer", answer, map[bool]uint32{false: xdpPass, true: xdpDrop}[confirm], 1},
				{"port unreachable quoting the retry", quote, map[bool]uint32{false: xdpPass, true: xdpDrop}[confirm], 1},
			} {
				if v := run(t, s, c.frame); v != c.want {
					t.Fatalf("port %d confirm %v, %s: verdict %d, want %d", port, confirm, c.name, v, c.want)
				}
				ev := drain(t, s)
				if c.want == xdpDrop && (len(ev) != 1 || ev[0].Confirm != c.wantConfirm) {
					t.Fatalf("port %d confirm %v, %s: events %+v, want one with confirm %d", port, confirm, c.name, ev, c.wantConfirm)
				}
			}
		}
	}
}

// collidingTarget is an address whose retry to port would hash to the
// probe's own source port: the retry must move to another.
func collidingTarget(t *testing.T, port uint16) netip.Addr {
	for a := netip.MustParseAddr("198.18.1.0"); a.Less(netip.MustParseAddr("198.18.255.255")); a = a.Next() {
		h0, h1 := testKey.Hash(scanner4, a, 17, 0, port), testKey.Hash(scanner4, a, 17, 1, port)
		if probe.UDPSourcePort(uint32(h0), 40000, 40255) == probe.UDPSourcePort(uint32(h1), 40000, 40255) {
			return a
		}
	}
	t.Fatal("no address whose retry collides")
	return netip.Addr{}
}
