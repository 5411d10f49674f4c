// Package scantest holds what the tests that run the scan program with
// BPF_PROG_RUN share, in loader/ and in probe/: the scanner's and the
// targets' addresses, the cookie key, loading the program as a scan does,
// running one frame and draining the events it reported.
package scantest

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/ringtest"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

// The XDP verdicts the scan program returns.
const (
	XDPDrop = 1 // a reply to one of our probes
	XDPPass = 2 // anything else
)

var (
	Scanner4 = netip.MustParseAddr("198.19.0.1")
	Target4  = netip.MustParseAddr("198.18.0.7")
	Router4  = netip.MustParseAddr("198.19.0.254")
	Scanner6 = netip.MustParseAddr("2001:2::1")
	Target6  = netip.MustParseAddr("2001:2::1:7")
	Key      = probe.CookieKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
)

// Load loads the scan program for Scanner4/Scanner6, source ports
// 40000-40255 and key, without the UDP echo table; the test closes it.
func Load(t testing.TB, key probe.CookieKey) *loader.Scan {
	t.Helper()
	return load(t, loader.ScanConfig{CookieKey: [2]uint64(key)})
}

// LoadUDP is Load with Key and probe's UDP echo table, as a scan loads it.
func LoadUDP(t testing.TB) *loader.Scan {
	t.Helper()
	return load(t, loader.ScanConfig{CookieKey: [2]uint64(Key), UDPEchoes: probe.UDPEchoes()})
}

func load(t testing.TB, cfg loader.ScanConfig) *loader.Scan {
	t.Helper()
	bpftest.Require(t)
	cfg.SourceIPv4, cfg.SourceIPv6 = Scanner4, Scanner6
	cfg.SourcePortLo, cfg.SourcePortHi = 40000, 40255
	cfg.RingBytes, cfg.DedupEntries = 1<<16, 1<<12
	s, err := loader.LoadScan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Run runs the scan program once on frame and returns its verdict.
func Run(t testing.TB, s *loader.Scan, frame []byte) uint32 {
	t.Helper()
	ret, err := s.Program().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	return ret
}

// Drain returns every event waiting in the ring.
func Drain(t testing.TB, s *loader.Scan) []bpf.ScanScanEvent {
	t.Helper()
	return ringtest.Drain[bpf.ScanScanEvent](t, s.Events())
}
