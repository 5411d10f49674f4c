package loader_test

import (
	"encoding/binary"
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
	for _, port := range []uint16{53, 9999} {
		buf := make([]byte, probe.MaxFrame)
		n := probe.NewUDP(testpkt.SrcMAC, testpkt.DstMAC, scanner4, 40000, 40255, probe.PayloadFor(port), testKey).FillConfirm(buf, target4, port)
		retry := buf[14:n]
		sport := binary.BigEndian.Uint16(retry[20:])
		answer := testpkt.Build(testpkt.Frame{Src: target4, Dst: scanner4, L4: udpLayer(port, sport), Payload: svcAnswer(port, retry[28:], false)})
		quote := testpkt.Build(quotingErrorRaw(target4, scanner4, 3, 3, retry[:28]))
		firstSport, req := udpPayloadOf(scanner4, target4, port)
		first := testpkt.Build(testpkt.Frame{Src: target4, Dst: scanner4, L4: udpLayer(port, firstSport), Payload: svcAnswer(port, req, false)})
		if port == 9999 && sport == firstSport {
			t.Fatalf("the retry of port %d is sent from the probe's own source port %d: no fresh cookie bits", port, sport)
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
