package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/testbed"
	"github.com/xdpscan/xdpscan/transmit"
)

// The sender's ceiling on veth, against a bare sendmmsg loop on the same
// link: `go test ./e2e -run '^$' -bench Send -benchtime 500000x`. Probes go
// to the testbed's filtered slice (last octet >= 240), which the target
// drops at prerouting, so only the sending path is measured.

// benchTransmitter brings a testbed up and opens a transmitter on the
// scanner's interface, both released when the benchmark ends.
func benchTransmitter(b *testing.B) *transmit.Socket {
	tb, err := testbed.Up(testbed.Config{Name: fmt.Sprintf("bsend%d", os.Getpid()%100000)})
	if err != nil {
		b.Skipf("testbed: %v (run as root)", err)
	}
	b.Cleanup(func() { tb.Down() })
	var tx *transmit.Socket
	if err := testbed.Do(tb.ScanNS(), func() (err error) { tx, err = transmit.NewSocket(testbed.ScanIf); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close() })
	return tx
}

// BenchmarkSendBareSendmmsg sends one prebuilt frame in batches of 64 with
// raw sendmmsg calls: the most a sender can do on this link.
func BenchmarkSendBareSendmmsg(b *testing.B) {
	tx := benchTransmitter(b)
	tmpl := probe.NewSYN(testbed.ScanMAC, testbed.TargetMAC, testbed.ScanIP, 40000, probe.CookieKey{1, 2})
	var lens [transmit.SocketBatch]int
	for i := range lens {
		lens[i] = tmpl.Fill(tx.Buffer(i), netip.MustParseAddr("198.18.0.245"), 80) // 198.18.0.245: filtered, dropped by the target
	}
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += transmit.SocketBatch {
		if err := tx.Send(context.Background(), lens[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pps")
}

// BenchmarkSendScanPath is the scan's real send path: permutation, template
// fill with a fresh cookie per probe, batches, and the rate limiter at an
// unreachable rate.
func BenchmarkSendScanPath(b *testing.B) {
	tx := benchTransmitter(b)
	// Only filtered addresses (last octet 240-255): the target drops them all.
	var ranges []targets.Range
	for i := 0; i < 256; i++ {
		lo := netip.AddrFrom4([4]byte{198, 18, byte(i), 240})
		ranges = append(ranges, targets.Range{Lo: lo, Hi: netip.AddrFrom4([4]byte{198, 18, byte(i), 255})})
	}
	set := targets.NewRangeSet(ranges)
	ports := []uint16{22, 80, 443, 8080}
	perm := targets.NewPermutation(set.Len()*4, 1)
	tmpls := make([]*probe.SYN, 256)
	for i := range tmpls {
		tmpls[i] = probe.NewSYN(testbed.ScanMAC, testbed.TargetMAC, testbed.ScanIP, 40000+uint16(i), probe.CookieKey{1, 2})
	}
	limiter := scan.NewRateLimiter(1e12)
	var lens [transmit.SocketBatch]int
	ctx := context.Background()
	b.ResetTimer()
	pos := uint64(0)
	for sent := 0; sent < b.N; {
		k := limiter.Next(ctx, transmit.SocketBatch)
		for i := 0; i < k; i++ {
			x := perm.At(pos % perm.Len())
			lens[i] = tmpls[pos%256].Fill(tx.Buffer(i), set.At(x/4), ports[x%4])
			pos++
		}
		if err := tx.Send(ctx, lens[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pps")
}
