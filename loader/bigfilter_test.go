package loader_test

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/kfloor"
	"github.com/xdpscan/xdpscan/internal/testfilter"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
)

// TestCaptureLoadsFilterNeedingLongJumps loads the capture program with a
// filter of filter.MaxInstructions classic instructions, whose five copies
// (one per frame shape) each have jumps past a 16-bit offset, and runs
// frames through it that match the first and the last terms, by source and
// destination, on each shape's path, and frames that match none. Without
// filter.LongJumps the verifier refuses it ("jump out of range").
func TestCaptureLoadsFilterNeedingLongJumps(t *testing.T) {
	bpftest.Require(t, kfloor.LongJumps)
	const n = 16_382 // 4n+7 = 65,535 classic instructions
	raw := testfilter.AddressList(n)
	c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	xlated, err := info.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	gotol := 0
	for _, ins := range xlated {
		if ins.OpCode.Class() == asm.Jump32Class && ins.OpCode.JumpOp() == asm.Ja {
			gotol++
		}
	}
	t.Logf("%d classic instructions; the capture program is %d eBPF instructions, %d of them gotol", len(raw), len(xlated), gotol)
	if gotol == 0 {
		t.Fatal("no long jump in the program: the test does not test what it is for")
	}

	addr := testfilter.AddressListAddr
	other := netip.MustParseAddr("198.19.255.1")
	udp := func(src, dst netip.Addr) []byte {
		return testpkt.Build(testpkt.Frame{Src: src, Dst: dst, L4: &layers.UDP{SrcPort: 1, DstPort: 2}, Payload: make([]byte, 8)})
	}
	tcp := func(src, dst netip.Addr) []byte {
		return testpkt.Build(testpkt.Frame{Src: src, Dst: dst, L4: testpkt.TCP(1, 2, 3, 0, "S")})
	}
	icmp := func(src, dst netip.Addr) []byte {
		return testpkt.Build(testpkt.Frame{Src: src, Dst: dst, L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, Payload: make([]byte, 8)})
	}
	frames := []struct {
		name  string
		data  []byte
		match bool
	}{
		{"UDP from the first term", udp(addr(0), other), true},
		{"UDP to the last term", udp(other, addr(n-1)), true},
		{"UDP to none", udp(other, addr(n)), false},
		{"TCP from the last term", tcp(addr(n-1), other), true},
		{"TCP to the first term", tcp(other, addr(0)), true},
		{"TCP to none", tcp(other, other), false},
		{"ICMP to the last term", icmp(other, addr(n-1)), true},
		{"ICMP from none", icmp(addr(n+5), other), false},
	}
	var want uint64
	for _, f := range frames {
		before, err := c.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Program().Run(&ebpf.RunOptions{Data: f.data}); err != nil {
			t.Fatal(err)
		}
		after, err := c.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if got := after.Matched - before.Matched; (got == 1) != f.match || got > 1 {
			t.Errorf("%s: matched %d, want match %v", f.name, got, f.match)
		}
		if f.match {
			want++
		}
	}
	if got := drainCaptures(t, c); uint64(len(got)) != want {
		t.Errorf("captured %d frames, want %d", len(got), want)
	}
}

// TestCaptureRefusesFilterOverTheLimit: a classic program longer than the
// capture program holds is refused with the limit, before translation.
func TestCaptureRefusesFilterOverTheLimit(t *testing.T) {
	bpftest.Require(t, kfloor.LongJumps)
	raw := testfilter.AddressList(20_000) // 80,007 instructions
	_, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 16})
	want := "install filter: 80007 classic BPF instructions: at most 65535 fit in the capture program; capture with a shorter filter"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}
