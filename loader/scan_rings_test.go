package loader_test

import (
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
	"github.com/xdpscan/xdpscan/internal/ringtest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

// runOn runs prog on frame with the calling thread pinned to cpu.
func runOn(t *testing.T, prog *ebpf.Program, cpu int, frame []byte) uint32 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("BPF_PROG_RUN on CPU %d: %v", cpu, err)
	}
	return ret
}

// With per-CPU rings each CPU's replies land in its own ring, from the
// XDP program and from its TC variant (which shares the rings), and the
// shared ring stays empty; the programs load with CAP_BPF and
// CAP_NET_ADMIN only.
func TestScanPerCPURings(t *testing.T) {
	bpftest.Require(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	var s *loader.Scan
	var tc *loader.ScanTC
	capstest.WithEffective(t, documented[:2], func() {
		var err error
		s, err = loader.LoadScan(loader.ScanConfig{SourceIPv4: scanner4, SourceIPv6: scanner6, SourcePortLo: 40000, SourcePortHi: 40255,
			CookieKey: [2]uint64(testKey), RingBytes: 1 << 16, DedupEntries: 1 << 12,
			Rings: loader.RingPlan{CPUs: [][]int{{0}, {1}}, Bytes: 1 << 16}})
		if err != nil {
			t.Fatalf("with %s only: %v", capstest.Names(documented[:2]), short(err))
		}
		if tc, err = s.LoadTC(); err != nil {
			s.Close()
			t.Fatalf("TC variant with %s only: %v", capstest.Names(documented[:2]), short(err))
		}
	})
	defer s.Close()
	defer tc.Close()
	if len(s.CPURings) != 2 || len(s.Rings()) != 3 {
		t.Fatalf("%d per-CPU rings, %d in all: want 2 and 3", len(s.CPURings), len(s.Rings()))
	}
	// A SYN-ACK from a port of its own per (CPU, hook): every one a new
	// pair, so none is taken for a duplicate.
	want := map[int][]uint16{}
	port := uint16(1000)
	for cpu := range 2 {
		for _, hook := range []struct {
			prog *ebpf.Program
			ok   uint32
		}{{s.Program(), xdpDrop}, {tc.Program(), tcShot}} {
			port++
			f := testpkt.Frame{Src: target4, Dst: scanner4, TTL: 61, L4: testpkt.TCP(port, 40001, 777, cookie(scanner4, target4, 40001, port)+1, "SA")}
			if got := runOn(t, hook.prog, cpu, testpkt.Build(f)); got != hook.ok {
				t.Fatalf("CPU %d, port %d: verdict %d, want %d", cpu, port, got, hook.ok)
			}
			want[cpu] = append(want[cpu], port)
		}
	}
	if got := ringtest.Drain[bpf.ScanScanEvent](t, s.Events()); len(got) != 0 {
		t.Errorf("shared ring: %d events, want none", len(got))
	}
	for cpu, ring := range s.CPURings {
		var ports []uint16
		for _, e := range ringtest.Drain[bpf.ScanScanEvent](t, ring) {
			ports = append(ports, e.Port)
		}
		if len(ports) != len(want[cpu]) || ports[0] != want[cpu][0] || ports[1] != want[cpu][1] {
			t.Errorf("CPU %d's ring: ports %v, want %v", cpu, ports, want[cpu])
		}
	}
}

// With DedupPerCPU a pair answered on CPU 0 and again on CPU 1 is new to
// each CPU's table (user space refuses the second); with one shared table
// the second is a duplicate.
func TestScanDedupPerCPU(t *testing.T) {
	bpftest.Require(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	frame := testpkt.Build(reply("SA", cookie(scanner4, target4, 40001, 443)+1))
	for _, tc := range []struct {
		perCPU   bool
		wantDups uint64
	}{{false, 1}, {true, 0}} {
		s, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: scanner4, SourcePortLo: 40000, SourcePortHi: 40255,
			CookieKey: [2]uint64(testKey), RingBytes: 1 << 16, DedupEntries: 1 << 12, DedupPerCPU: tc.perCPU})
		if err != nil {
			t.Fatal(err)
		}
		runOn(t, s.Program(), 0, frame)
		runOn(t, s.Program(), 1, frame)
		if c := counters(t, s); c.Duplicates != tc.wantDups || c.Matched != 2 {
			t.Errorf("per CPU %v: %d duplicates of 2 matched, want %d", tc.perCPU, c.Duplicates, tc.wantDups)
		}
		s.Close()
	}
}
