package transmit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
	"github.com/xdpscan/xdpscan/transmit"
)

// vethNS makes a network namespace of its own holding a veth pair txa <-> txb,
// both up, removed when the test ends. It needs root (CAP_SYS_ADMIN and
// CAP_NET_ADMIN).
func vethNS(t *testing.T, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a network namespace: run it as root (go test -exec sudo)")
	}
	ns := fmt.Sprintf("xdpscan-txtest-%s-%d", name, os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	// No IPv6: the kernel's own router and neighbour solicitations would
	// count as received frames.
	run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	run(t, "ip", "-n", ns, "link", "add", "txa", "type", "veth", "peer", "name", "txb")
	run(t, "ip", "-n", ns, "link", "set", "txa", "up")
	run(t, "ip", "-n", ns, "link", "set", "txb", "up")
	return ns
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// rxPackets is interface txb's received-frames counter in ns.
func rxPackets(t *testing.T, ns string) uint64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/txb/statistics/rx_packets").Output()
	if err != nil {
		t.Fatalf("read txb's rx_packets: %v", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("txb's rx_packets %q: %v", out, err)
	}
	return n
}

// frame is a 60-byte Ethernet frame to the broadcast address: txb's stack
// counts it and drops it (an EtherType nobody handles).
func frame(buf []byte) int {
	for i := range 6 {
		buf[i] = 0xff
	}
	copy(buf[6:12], []byte{2, 0, 0, 0, 0, 1})
	buf[12], buf[13] = 0x88, 0xb5 // IEEE local experimental
	clear(buf[14:60])
	return 60
}

// TestSocketSendsEveryFrameThroughAFullSocket sends batches through a
// token bucket of 20 Mbit/s on the interface (about 40,000 of these
// frames a second), which holds the frames and so their share of the
// socket's send buffer: the socket is full (EAGAIN) again and again, and
// each time Send waits in Go's network poller. Every frame must arrive
// once, none lost or repeated.
func TestSocketSendsEveryFrameThroughAFullSocket(t *testing.T) {
	ns, tx, lens := throttledSocket(t, "full", "20mbit", "16kb")
	before := rxPackets(t, ns)
	const batches = 200
	for range batches {
		if err := tx.Send(context.Background(), lens); err != nil {
			t.Fatal(err)
		}
	}
	want := uint64(batches * len(lens))
	sent, errs := tx.Counts()
	// The peer's counter is updated in its softirq, soon after the send.
	deadline := time.Now().Add(2 * time.Second)
	got := rxPackets(t, ns) - before
	for got < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = rxPackets(t, ns) - before
	}
	if sent != want || got != want || errs != 0 {
		t.Fatalf("sent %d, peer received %d, %d errors; want %d, %d, 0", sent, got, errs, want, want)
	}
	if tx.Waits.Load() == 0 {
		out, _ := exec.Command("tc", "-n", ns, "-s", "qdisc", "show", "dev", "txa").CombinedOutput()
		t.Fatalf("the socket was never full: the test did not exercise the wait (%s)", out)
	}
}

// TestSocketSendReturnsOnContextWhileFull: a socket that stays full (a
// token bucket of 1,000 bytes a second holds its frames) is waited on
// only until ctx ends, within the wait slice (100 ms), and Send says why.
func TestSocketSendReturnsOnContextWhileFull(t *testing.T) {
	_, tx, lens := throttledSocket(t, "stuck", "8kbit", "1600")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 5*time.Second {
		err = tx.Send(ctx, lens)
	}
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send returned %v after %v, want the context's deadline", err, took)
	}
	if took > 300*time.Millisecond+250*time.Millisecond {
		t.Fatalf("Send returned %v after the context ended (took %v)", took-300*time.Millisecond, took)
	}
	if tx.Waits.Load() == 0 {
		t.Fatal("the socket was never full")
	}
}

// throttledSocket is a socket on a veth in a namespace of its own, whose
// token bucket (rate, burst: tc tbf's words) holds its frames, with a
// batch of frames built in its buffers (lens). Closed at the test's end.
func throttledSocket(t *testing.T, name, rate, burst string) (ns string, tx *transmit.Socket, lens []int) {
	t.Helper()
	ns = vethNS(t, name)
	run(t, "tc", "-n", ns, "qdisc", "add", "dev", "txa", "root", "tbf", "rate", rate, "burst", burst, "limit", "10000000")
	if err := testbed.Do(ns, func() (err error) { tx, err = transmit.NewSocket("txa"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	lens = make([]int, tx.Batch())
	for i := range lens {
		lens[i] = frame(tx.Buffer(i))
	}
	return ns, tx, lens
}
