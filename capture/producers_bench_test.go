package capture

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

// BenchmarkRingProducers is the model's input for many CPUs: the capture
// program's cost per record (BPF_PROG_RUN, repeat 4096, 60-byte UDP frame,
// -s 128) on one CPU, and on CPUs 0 and 1 at once into one shared ring or
// into a ring each; and the reader's cost per record for one ring read
// directly or several rings merged in order. ns/record is per producing
// CPU (the kernel's own figure, its duration per repeat).
func BenchmarkRingProducers(b *testing.B) {
	bpftest.Require(b)
	raw, err := filter.Compile("udp", 128)
	if err != nil {
		b.Fatal(err)
	}
	frame := testpkt.Build(testpkt.Frame{Src: netip.MustParseAddr("198.19.0.1"), Dst: netip.MustParseAddr("198.18.0.7"),
		L4: &layers.UDP{SrcPort: 40000, DstPort: 9}, Payload: make([]byte, 18)})
	for _, tc := range []struct {
		name   string
		cpus   []int
		perCPU bool
	}{
		{"1cpu-shared", []int{0}, false},
		{"2cpu-shared", []int{0, 1}, false},
		{"2cpu-percpu", []int{0, 1}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if len(tc.cpus) > runtime.NumCPU() {
				b.Skip("not enough CPUs")
			}
			cfg := loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 26}
			if tc.perCPU {
				for _, c := range tc.cpus {
					cfg.Rings.CPUs = append(cfg.Rings.CPUs, []int{c})
				}
				cfg.Rings.Bytes = 1 << 25
			}
			c, err := loader.LoadCapture(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			multi, err := ringbuf.NewMulti[bpf.CaptureCaptureHdr](c.Rings(), ringbuf.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer multi.Close()
			const repeat = 4096
			var kernelNs, readNs time.Duration
			records := 0
			for i := 0; i < b.N; i++ {
				durs := make([]time.Duration, len(tc.cpus))
				var wg sync.WaitGroup
				for k, cpu := range tc.cpus {
					wg.Add(1)
					go func() {
						defer wg.Done()
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						var set unix.CPUSet
						set.Set(cpu)
						if err := unix.SchedSetaffinity(0, &set); err != nil {
							b.Error(err)
							return
						}
						// The kernel's time per run, averaged over the repeats.
						_, d, err := c.Program().Benchmark(frame, repeat, nil)
						if err != nil {
							b.Error(err)
						}
						durs[k] = d
					}()
				}
				wg.Wait()
				for _, d := range durs {
					kernelNs += d
				}
				// Read what was produced: directly (one ring) or merged.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				t0 := time.Now()
				n := 0
				if tc.perCPU {
					if _, err := mergeRings(ctx, multi, 0, func(*bpf.CaptureCaptureHdr, []byte) { n++ }); err != nil {
						b.Fatal(err)
					}
				} else {
					if err := multi.RunRecords(ctx, func(int, *bpf.CaptureCaptureHdr, []byte) { n++ }, func(int64, []bool) {}); err != nil {
						b.Fatal(err)
					}
				}
				readNs += time.Since(t0)
				records += n
			}
			lost, _ := c.RingLostPerCPU()
			for _, l := range lost {
				if l != 0 {
					b.Fatalf("ring lost %v: the rings are too small for the run", lost)
				}
			}
			perCPURuns := float64(b.N) * float64(len(tc.cpus))
			b.ReportMetric(float64(kernelNs.Nanoseconds())/perCPURuns, "kernel-ns/record")
			b.ReportMetric(float64(readNs.Nanoseconds())/float64(records), "read-ns/record")
		})
	}
}
