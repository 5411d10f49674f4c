package loader_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

// BenchmarkCaptureHooks is the kernel's time per packet (BPF_PROG_RUN
// repeat, 15 runs of 50,000; min, median and max reported) of each way a
// capture takes packets, on a 60-byte UDP frame that matches "udp and dst
// port 9": the XDP program (an interface of its own) and the TC program
// (egress, and ingress beside another XDP program), each beside an empty
// program of its hook, count-only and with a 128-byte ring record.
//
//	go test ./loader -run '^$' -bench CaptureHooks -benchtime 1x -count 3
func BenchmarkCaptureHooks(b *testing.B) {
	bpftest.Require(b)
	frame := floodFrame()
	measure := func(b *testing.B, prog *ebpf.Program, want uint32, between func()) {
		var runs []time.Duration
		for range 15 {
			ret, d, err := prog.Benchmark(frame, 50_000, nil)
			if err != nil {
				b.Fatal(err)
			}
			if ret != want {
				b.Fatalf("verdict %#x, want %#x", ret, want)
			}
			runs = append(runs, d)
			between()
		}
		slices.Sort(runs)
		b.ReportMetric(float64(runs[0].Nanoseconds()), "min-ns/packet")
		b.ReportMetric(float64(runs[len(runs)/2].Nanoseconds()), "median-ns/packet")
		b.ReportMetric(float64(runs[len(runs)-1].Nanoseconds()), "max-ns/packet")
	}
	for _, empty := range []struct {
		name string
		typ  ebpf.ProgramType
		ret  int32
	}{{"xdp-empty", ebpf.XDP, 2}, {"tc-empty", ebpf.SchedCLS, -1}} {
		b.Run(empty.name, func(b *testing.B) {
			p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: empty.typ, License: "Dual BSD/GPL",
				Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, empty.ret), asm.Return()}})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			measure(b, p, uint32(empty.ret), func() {})
		})
	}
	raw, err := filter.Compile("udp and dst port 9", 262144)
	if err != nil {
		b.Fatal(err)
	}
	for _, hook := range []string{"xdp", "tc"} {
		for _, countOnly := range []bool{true, false} {
			name := hook + "/snaplen128"
			if countOnly {
				name = hook + "/count-only"
			}
			b.Run(name, func(b *testing.B) {
				cfg := loader.CaptureConfig{Filter: raw, Snaplen: 128, CountOnly: countOnly, RingBytes: 1 << 24}
				var prog *ebpf.Program
				var ring *ebpf.Map
				want := uint32(2)
				if hook == "xdp" {
					c, err := loader.LoadCapture(cfg)
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					prog, ring = c.Program(), c.Events()
				} else {
					c, err := loader.LoadCaptureTC(cfg, nil, true)
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					prog, ring, want = c.Program(), c.Events(), tcUnspec
				}
				cons, err := ringbuf.New[bpf.CaptureCaptureHdr](ring, ringbuf.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer cons.Close()
				done, cancel := context.WithCancel(context.Background())
				cancel()
				measure(b, prog, want, func() {
					if err := cons.RunRecords(done, func(*bpf.CaptureCaptureHdr, []byte) {}); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}
