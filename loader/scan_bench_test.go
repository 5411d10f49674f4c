package loader_test

import (
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// BenchmarkScanProgram is the kernel's time per reply (BPF_PROG_RUN repeat)
// for the scan program: a validated SYN-ACK (after its first run a
// duplicate: parse, cookie, dedup, drop), a frame for another port (parse
// and pass), and an ICMP port unreachable quoting a UDP probe (the quote
// parsed too). The lowest of 15 runs, as BenchmarkCaptureProgram.
func BenchmarkScanProgram(b *testing.B) {
	s := loadScanUDP(b) // the payload table: quotes of UDP probes are checked on their checksum
	c4 := cookie(scanner4, target4, 40001, 443)
	dnsSport, dnsReq := udpPayloadOf(scanner4, target4, 53)
	for _, tc := range []struct {
		name    string
		frame   []byte
		verdict uint32
	}{
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.], seq 777, ack c4+1
		{"syn-ack", testpkt.Build(reply("SA", c4+1)), xdpDrop},
		// 198.18.0.7.443 > 198.19.0.1.22: Flags [S.], seq 777, ack 1
		{"not-ours", testpkt.Build(testpkt.Frame{Src: target4, Dst: scanner4, L4: testpkt.TCP(443, 22, 777, 1, "SA")}), xdpPass},
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 53 unreachable
		{"icmp-quote", testpkt.Build(icmpError(target4, 3, 3, udpProbe(scanner4, target4, 53), 0)), xdpDrop},
		// 198.18.0.7.53 > 198.19.0.1.sport: DNS answer (ID and the name's case checked)
		{"dns-answer", testpkt.Build(testpkt.Frame{Src: target4, Dst: scanner4, L4: udpLayer(53, dnsSport), Payload: svcAnswer(53, dnsReq, false)}), xdpDrop},
	} {
		b.Run(tc.name, func(b *testing.B) {
			best := time.Duration(1 << 62)
			for range 15 {
				ret, d, err := s.Program().Benchmark(tc.frame, 50_000, nil)
				if err != nil {
					b.Fatal(err)
				}
				if ret != tc.verdict {
					b.Fatalf("verdict %d, want %d", ret, tc.verdict)
				}
				best = min(best, d)
			}
			b.ReportMetric(float64(best.Nanoseconds()), "ns/packet")
		})
	}
}
