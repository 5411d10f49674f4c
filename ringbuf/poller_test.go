package ringbuf

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// TestRingWaitsInGoPoller: the ring's epoll descriptor is taken by Go's
// network poller, so an idle wait parks the goroutine (no thread blocked
// in epoll_wait) and still ends at its deadline.
func TestRingWaitsInGoPoller(t *testing.T) {
	bpftest.Require(t, kfloor.RingBuffer)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		t.Fatalf("create a ring buffer map: %v", err)
	}
	defer m.Close()
	r, err := openRing(m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if r.poller == nil {
		t.Fatal("the ring's epoll descriptor was not taken by Go's poller")
	}
	start := time.Now()
	if err := r.wait(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 15*time.Millisecond || el > time.Second {
		t.Errorf("an idle wait of 20ms took %v", el)
	}
}
