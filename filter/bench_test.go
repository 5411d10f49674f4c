package filter

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// BenchmarkFilterTCPPort443 compares the translated `tcp port 443` with the
// same filter hand-written in C (bpf/filterbench.c), both run by the kernel
// with BPF_PROG_RUN repeat; ns/op is the kernel's per-run time. Target:
// translated within 2x of hand-written.
func BenchmarkFilterTCPPort443(b *testing.B) {
	bpftest.Require(b)
	a := netip.MustParseAddr
	frames := map[string][]byte{
		// 198.19.0.1.40001 > 198.18.0.7.443: Flags [S]
		"match": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")}),
		// 198.19.0.1.40001 > 198.18.0.7.80: Flags [S]
		"miss": testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 80, 1, 0, "S")}),
	}
	var hand bpf.FilterbenchObjects
	if err := bpf.LoadFilterbenchObjects(&hand, nil); err != nil {
		b.Fatal(err)
	}
	defer hand.Close()
	raw, err := Compile("tcp port 443", 262144)
	if err != nil {
		b.Fatal(err)
	}
	insns, err := Translate(raw, Shape{}, asm.Instructions{
		asm.Mov.Imm(asm.R1, 2), // XDP_PASS on a match, as the C version
		asm.JNE.Imm32(RegResult, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("out"),
		asm.Return(),
	})
	if err != nil {
		b.Fatal(err)
	}
	translated, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: insns, License: "Dual BSD/GPL"})
	if err != nil {
		b.Fatal(err)
	}
	defer translated.Close()
	for _, impl := range []struct {
		name string
		prog *ebpf.Program
	}{{"handwritten", hand.HandwrittenTcpPort443}, {"translated", translated}} {
		for fname, frame := range frames {
			b.Run(impl.name+"/"+fname, func(b *testing.B) {
				ret, d, err := impl.prog.Benchmark(frame, 1_000_000, nil)
				if err != nil {
					b.Fatal(err)
				}
				if want := map[string]uint32{"match": 2, "miss": 1}[fname]; ret != want {
					b.Fatalf("verdict %d, want %d", ret, want)
				}
				b.ReportMetric(float64(d.Nanoseconds()), "ns/run")
			})
		}
	}
}
