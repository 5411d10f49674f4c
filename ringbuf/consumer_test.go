package ringbuf_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"go.uber.org/goleak"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/ringbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	us  = netip.MustParseAddr("198.19.0.1")
	key = probe.CookieKey{3, 4}
)

// produce makes the scan program submit n events, one per target address
// 198.18.0.0 + i, through BPF_PROG_RUN.
func produce(t *testing.T, s *loader.Scan, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		tgt := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		c := key.Cookie4(us.As4(), tgt.As4(), 6, 40000, 80)
		frame := testpkt.Build(testpkt.Frame{Src: tgt, Dst: us, L4: testpkt.TCP(80, 40000, 1, c+1, "SA")})
		if ret, err := s.Program().Run(&ebpf.RunOptions{Data: frame}); err != nil || ret != 1 {
			t.Fatalf("event %d: verdict %d, err %v", i, ret, err)
		}
	}
}

func load(t *testing.T, wakeup uint32) *loader.Scan {
	t.Helper()
	bpftest.Require(t)
	s, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: us, SourcePortLo: 40000, SourcePortHi: 40000,
		CookieKey: key, RingBytes: 1 << 16, RingWakeupBytes: wakeup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBatchesInOrderAndDrainsOnCancel(t *testing.T) {
	s := load(t, 0)
	produce(t, s, 0, 10)
	c, err := ringbuf.New[bpf.ScanScanEvent](s.Events(), ringbuf.Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already cancelled: Run must still deliver all 10, then return
	var sizes []int
	var order []byte
	err = c.Run(ctx, func(b []scanEvent) {
		sizes = append(sizes, len(b))
		for _, e := range b {
			order = append(order, e.Addr[3])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 || sizes[0] != 4 || sizes[1] != 4 || sizes[2] != 2 {
		t.Fatalf("batch sizes %v, want [4 4 2]", sizes)
	}
	for i, a := range order {
		if int(a) != i {
			t.Fatalf("event %d is for .%d: out of order", i, a)
		}
	}
	st := c.Stats()
	if st.Records != 10 || st.Batches != 3 || st.Bytes != 10*eventSize || st.ShortRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDeferredWakeupsStillDeliver: with a wakeup threshold no record
// triggers, the reader's poll deadline still picks records up promptly.
func TestDeferredWakeupsStillDeliver(t *testing.T) {
	s := load(t, 1<<15)
	c, err := ringbuf.New[bpf.ScanScanEvent](s.Events(), ringbuf.Options{PollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int, 100)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(b []scanEvent) { got <- len(b) }) }()
	produce(t, s, 0, 3)
	total := 0
	deadline := time.After(2 * time.Second)
	for total < 3 {
		select {
		case n := <-got:
			total += n
		case <-deadline:
			t.Fatalf("only %d of 3 records delivered without a wakeup", total)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type scanEvent = bpf.ScanScanEvent

const eventSize = uint64(unsafe.Sizeof(scanEvent{}))

// TestRecordsAcrossTheRingsEnd: a one-page ring holds 64 records of 64
// bytes (8 of header); 3000 records wrap it 47 times, many of them split across its end
// (read whole through the kernel's double mapping), and all arrive in order.
func TestRecordsAcrossTheRingsEnd(t *testing.T) {
	bpftest.Require(t)
	s, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: us, SourcePortLo: 40000, SourcePortHi: 40000,
		CookieKey: key, RingBytes: uint32(os.Getpagesize())})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := ringbuf.New[bpf.ScanScanEvent](s.Events(), ringbuf.Options{BatchSize: 7, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var got []uint16
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(b []scanEvent) {
			for _, e := range b {
				got = append(got, uint16(e.Addr[2])<<8|uint16(e.Addr[3]))
			}
		})
	}()
	const total, chunk = 3000, 50
	for from := 0; from < total; from += chunk {
		produce(t, s, from, chunk)
		for deadline := time.Now().Add(2 * time.Second); c.Pending() > 0; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("consumer stuck with %d bytes pending after %d records", c.Pending(), from+chunk)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("%d of %d records delivered", len(got), total)
	}
	for i, a := range got {
		if int(a) != i {
			t.Fatalf("record %d is for address %d: out of order or corrupt", i, a)
		}
	}
	if st := c.Stats(); st.Records != total || st.Bytes != total*eventSize {
		t.Fatalf("stats %+v", st)
	}
}
