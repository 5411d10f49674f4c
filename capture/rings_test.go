package capture

import (
	"context"
	"encoding/binary"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/internal/sysfstest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

// runPinned runs prog on frames n times from a thread pinned to cpu
// (BPF_PROG_RUN runs the program on the calling CPU), each frame carrying
// its sequence number in its payload.
func runPinned(t *testing.T, prog *ebpf.Program, cpu, n int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return err
	}
	a := netip.MustParseAddr
	frame := testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"),
		L4: &layers.UDP{SrcPort: 40000, DstPort: 9}, Payload: make([]byte, 16)})
	for i := 0; i < n; i++ {
		// The UDP payload (the checksum goes stale: nothing checks it).
		binary.BigEndian.PutUint32(frame[42:], uint32(cpu))
		binary.BigEndian.PutUint32(frame[46:], uint32(i))
		if _, err := prog.Run(&ebpf.RunOptions{Data: frame}); err != nil {
			return err
		}
	}
	return nil
}

// Records captured on two CPUs at once, each into its CPU's ring, come out
// of the merge every one once, each CPU's in its own order, and all in
// timestamp order but for records counted late.
func TestPerCPURingsMergeInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	bpftest.Require(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	raw, err := filter.Compile("udp", 128)
	if err != nil {
		t.Fatal(err)
	}
	plan := loader.RingPlan{CPUs: [][]int{{0}, {1}}, Bytes: 1 << 22}
	c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 16, Rings: plan})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	multi, err := ringbuf.NewMulti[bpf.CaptureCaptureHdr](c.Rings(), ringbuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer multi.Close()

	const perCPU = 20000
	type got struct {
		ts       uint64
		cpu, seq uint32
		hdrCPU   uint32
	}
	var out []got
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	var stats struct{ late uint64 }
	go func() {
		ms, err := mergeRings(ctx, multi, 0, func(h *bpf.CaptureCaptureHdr, p []byte) {
			d := p[42:]
			out = append(out, got{h.TsNs, binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:]), h.Cpu})
		})
		stats.late = ms.Late
		done <- err
	}()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for cpu := 0; cpu < 2; cpu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[cpu] = runPinned(t, c.Program(), cpu, perCPU)
		}()
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := multi.Records(); n[0] != 0 || n[1] != perCPU || n[2] != perCPU {
		t.Fatalf("records per ring (shared, CPU 0, CPU 1) %v: want 0, %d, %d", n, perCPU, perCPU)
	}
	if len(out) != 2*perCPU {
		t.Fatalf("merged %d records, want %d", len(out), 2*perCPU)
	}
	next := []uint32{0, 0}
	inversions := uint64(0)
	for i, r := range out {
		if r.cpu != r.hdrCPU {
			t.Fatalf("record from CPU %d says CPU %d", r.cpu, r.hdrCPU)
		}
		if r.seq != next[r.cpu] {
			t.Fatalf("CPU %d's record %d came where %d was due: lost, repeated or reordered", r.cpu, r.seq, next[r.cpu])
		}
		next[r.cpu]++
		if i > 0 && r.ts < out[i-1].ts {
			inversions++
		}
	}
	if inversions > stats.late {
		t.Fatalf("%d records out of timestamp order, only %d counted late", inversions, stats.late)
	}
	// Both CPUs ran at once: their records interleave in the output.
	switches := 0
	for i := 1; i < len(out); i++ {
		if out[i].cpu != out[i-1].cpu {
			switches++
		}
	}
	t.Logf("%d records, %d switches between CPUs, %d late", len(out), switches, stats.late)
	if switches < 2 {
		t.Errorf("the two CPUs' records did not interleave (%d switches): the test did not exercise the merge", switches)
	}
	if !slices.IsSortedFunc(out, func(a, b got) int { return int(int64(a.ts) - int64(b.ts)) }) && stats.late == 0 {
		t.Fatal("out of order with nothing late")
	}
}

// A ring plan must give each CPU one ring, of a valid size.
func TestRingPlanChoice(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      loader.RingsMode
		cpus      int
		wantRings int
		wantBytes uint32
	}{
		{"shared", loader.RingsShared, 8, 1, 0},
		{"auto, one CPU", loader.RingsAuto, 1, 1, 0},
		{"auto, two CPUs: shared (measured better)", loader.RingsAuto, 2, 1, 0},
		{"per-cpu, two CPUs", loader.RingsPerCPU, 2, 3, loader.RingBytes},
		{"per-cpu, one CPU", loader.RingsPerCPU, 1, 2, loader.RingBytes},
		{"auto, 64 CPUs: 64 MiB shared out", loader.RingsAuto, 64, 65, 1 << 20},
		{"auto, 8 CPUs: shared", loader.RingsAuto, 8, 1, 0},
		{"per-cpu, 8 CPUs", loader.RingsPerCPU, 8, 9, 8 << 20},
		{"auto, 16 CPUs", loader.RingsAuto, 16, 17, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sysfstest.Use(t, &netdev.SysRoot, sysfstest.Root(t, map[string]string{
				"sys/devices/system/cpu/online": sysfstest.Online(tc.cpus),
				"sys/class/net/v0/threaded":     "0",
			}))
			plan, ch, err := planRings(tc.mode, []string{"v0"})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Rings != tc.wantRings || ch.RingBytes != tc.wantBytes || plan.Rings() != tc.wantRings-1 {
				t.Fatalf("choice %+v (plan %d rings): want %d rings of %d bytes", ch, plan.Rings(), tc.wantRings, tc.wantBytes)
			}
		})
	}
}
