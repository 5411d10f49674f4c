package transmit

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/loader"
)

// XDPBatch is how many frames one XDP.Send takes: four of
// live-frames mode's kernel batches per syscall. Through a relay
// (XDPRelayBatch) nothing on the sending CPU runs between the kernel's
// batches, so a call can be longer, and each call's fixed cost (~12 us,
// and a page pool set up and torn down) is paid once per 1024 frames.
const (
	XDPBatch      = 4 * kernelBatch
	XDPRelayBatch = 4 * kernelBatchRelay
)

// kernelBatch is live-frames mode's batch: frames are transmitted (and the
// target's NAPI runs) every kernelBatch runs; kernelBatchMax is the
// kernel's maximum.
// Through a relay nothing runs on this CPU after a batch (the peer's NAPI
// runs on the relay's), so batches take the kernel's maximum: fewer
// flushes into the relay's queue and wakeups of its thread.
const (
	kernelBatch      = 64
	kernelBatchRelay = kernelBatchMax
	kernelBatchMax   = 256
)

// XDPBatchFor is the frames per call for a transmitter with or without relay.
func XDPBatchFor(relay *loader.SendRelay) int {
	if relay != nil {
		return XDPRelayBatch
	}
	return XDPBatch
}

// XDP sends frames from the kernel (scan --tx xdp): Fill writes
// them straight into the memory-mapped slots of the scan program's
// transmitter (bpf/include/send.h), and one
// BPF_PROG_RUN call in live-frames mode transmits a whole batch with
// XDP_TX. There is no socket and no skb on the sending side; on veth the
// frames reach the peer as XDP frames.
//
// The kernel reports no transmit failure to BPF_PROG_RUN's caller, so on
// veth the first batch is checked against the interface's counters (a veth
// peer without NAPI drops every frame), and the interface's tx_dropped
// growth is counted as failed sends.
type XDP struct {
	sender  *loader.Sender
	iface   string
	link    netlink.Link
	veth    bool
	checked bool
	base    netlink.LinkStatistics
	sent    atomic.Uint64

	relay           *loader.SendRelay
	drainRate       float64       // frames per second the relay last drained while we waited
	relayPID        int           // the relay's kernel thread, 0 if not found
	relayBase       time.Duration // its CPU time when the transmitter opened
	pinned, restore bool
	affinity        unix.CPUSet // the thread's CPUs before pin

	resend xdpResend // see xdpresend.go
}

// NewXDP sends out of the named interface, in the current
// network namespace, with the transmitter of prog, which must be loaded
// with loader.ScanConfig.SendSlots = XDPBatch (XDPRelayBatch with a
// loader.ScanConfig.SendRelay) and stay attached while it sends. It needs
// CAP_BPF and CAP_NET_ADMIN, and Linux 5.18.
func NewXDP(iface string, prog *loader.Scan) (*XDP, error) { return NewXDPAt(iface, prog, 0) }

// NewXDPAt is NewXDP for sender k of a program loaded with
// loader.ScanConfig.SendSenders > k: its own slots and state in the same
// program, so that k threads send at once.
func NewXDPAt(iface string, prog *loader.Scan, k int) (*XDP, error) {
	relay := prog.Relay()
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("send from XDP on %s: no such interface; see `ip link`", iface)
	}
	s, err := prog.SenderAt(k)
	if err != nil {
		return nil, fmt.Errorf("send from XDP on %s: %w", iface, err)
	}
	if s.Slots() < XDPBatchFor(relay) {
		s.Close()
		return nil, fmt.Errorf("send from XDP on %s: the program holds %d frames a batch, want %d", iface, s.Slots(), XDPBatchFor(relay))
	}
	t := &XDP{sender: s, iface: iface, link: link, veth: link.Type() == "veth", relay: relay}
	t.base, err = t.stats()
	if err != nil {
		s.Close()
		return nil, err
	}
	if relay == nil {
		if err := t.resend.open(iface, link.Attrs().Index, link.Attrs().HardwareAddr); err != nil && t.veth {
			s.Close()
			return nil, fmt.Errorf("send from XDP on %s: its refused frames cannot be counted, so not sent again: %w", iface, err)
		}
	}
	if relay != nil {
		t.relayPID = findKernelThread(prog.RelayThread())
		t.relayBase = threadCPU(t.relayPID)
	}
	t.pin()
	return t, nil
}

// RelayCPU is the CPU time the relay's kernel thread has used since the
// transmitter opened: the transmit, and on veth the peer's receive path,
// which runs in the transmitting thread's softirq. 0 without a relay.
func (t *XDP) RelayCPU() time.Duration {
	if t.relayPID == 0 {
		return 0
	}
	return threadCPU(t.relayPID) - t.relayBase
}

// findKernelThread is the PID of the kernel thread with this name, or 0.
// /proc shows a kernel thread's full name in its status (Linux 5.17);
// comm is cut at 15 bytes.
func findKernelThread(name string) int {
	if name == "" {
		return 0
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	want := "Name:\t" + name + "\n"
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/status")
		if err == nil && strings.HasPrefix(string(b), want) {
			return pid
		}
	}
	return 0
}

// threadCPU is a thread's run time so far (/proc/PID/schedstat: the
// scheduler's own nanoseconds, not ticks), 0 if it cannot be read.
func threadCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns)
}

// pin keeps the calling goroutine's thread, which sends, on the CPU it is
// on. A veth peer's NAPI is scheduled on the CPU that fills its ring and
// runs there in the softirq after each kernel batch; a sender that moved
// to the other CPU would go on filling the ring while the NAPI waits on
// the first one, and the ring (256 frames) overflows. With a relay the
// relay's kthread fills the ring, and the sender keeps off its CPU (where
// it could: the relay would otherwise wait for the sender's time slices).
func (t *XDP) pin() {
	runtime.LockOSThread()
	t.pinned = true
	if err := unix.SchedGetaffinity(0, &t.affinity); err != nil {
		return
	}
	var here unix.CPUSet
	var c, node uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&c)), uintptr(unsafe.Pointer(&node)), 0); errno != 0 {
		return
	}
	here.Set(int(c))
	if t.relay != nil && int(c) == int(t.relay.CPU) {
		if other, ok := otherCPU(t.affinity, int(c)); ok {
			here.Zero()
			here.Set(other)
		}
	}
	if unix.SchedSetaffinity(0, &here) == nil {
		t.restore = true
	}
}

// otherCPU is a CPU of set other than not.
func otherCPU(set unix.CPUSet, not int) (int, bool) {
	for c := 0; c < len(set)*64; c++ {
		if c != not && set.IsSet(c) {
			return c, true
		}
	}
	return 0, false
}

// Batch is XDPBatch, or XDPRelayBatch with a relay.
func (t *XDP) Batch() int { return XDPBatchFor(t.relay) }

// Buffer is slot i's frame buffer, in the program's own memory.
func (t *XDP) Buffer(i int) []byte { return t.sender.Frame(i) }

// Send transmits slots [0, len(lens)) with one BPF_PROG_RUN call.
func (t *XDP) Send(ctx context.Context, lens []int) error {
	batch := uint32(kernelBatch)
	if t.relay != nil {
		batch = kernelBatchRelay
	}
	if err := t.waitRelay(len(lens)); err != nil {
		return fmt.Errorf("send from XDP on %s: %w", t.iface, err)
	}
	var n int
	var err error
	if t.resend.on() {
		n, err = t.sendExact(lens, batch)
	} else {
		n, err = t.sender.Send(t.link.Attrs().Index, lens, batch)
	}
	t.sent.Add(uint64(n))
	if t.relay == nil {
		// The peer's NAPI runs in our softirq after each kernel batch,
		// unless the kernel handed softirqs to ksoftirqd on this CPU:
		// then it runs only when we let it, and the peer's ring (256
		// frames on veth) would overflow. Yielding after every call
		// lets it.
		unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
	if err != nil {
		return fmt.Errorf("send from XDP on %s: %w", t.iface, err)
	}
	if n != len(lens) {
		return fmt.Errorf("send from XDP on %s: the program refused %d of %d frames", t.iface, len(lens)-n, len(lens))
	}
	if !t.checked {
		t.checked = true
		return t.checkDelivered(ctx)
	}
	return nil
}

// relayStall is how long the relay may leave its queue untouched before
// Send gives up: its kthread runs whenever the queue holds frames, so a
// queue that does not move means frames were lost on the way to it.
const relayStall = time.Second

// A full relay queue is waited out in naps sized by how fast the relay has
// been draining it, between relayNapMin and relayNapMax; the first nap,
// with no rate known, is relayNapMax/10.
const (
	relayNapMin = 100 * time.Microsecond
	relayNapMax = 10 * time.Millisecond
)

// waitRelay returns once the relay's queue has room for n more frames:
// frames handed to it (sent) less those its program saw (relayed). A frame
// redirected into a full cpumap queue would be dropped without a trace.
// A full queue is waited out until half of it has drained, so a sender
// faster than its relay sleeps in a few naps per half queue rather than
// many short ones (each a timer, a context switch and, in a VM, an exit).
func (t *XDP) waitRelay(n int) error {
	if t.relay == nil || t.sender.Queued()+uint64(n) <= uint64(t.relay.Queue) {
		return nil
	}
	room := min(uint64(t.relay.Queue)/2, uint64(t.relay.Queue)-uint64(n))
	last, lastAt, stalled := t.sender.Relayed(), time.Now(), time.Duration(0)
	for {
		queued := t.sender.Handed() - last
		if queued <= room {
			return nil
		}
		nap := relayNapMax / 10
		if t.drainRate > 0 {
			nap = time.Duration(float64(queued-room) / t.drainRate * float64(time.Second))
		}
		time.Sleep(min(max(nap, relayNapMin), relayNapMax))
		r, now := t.sender.Relayed(), time.Now()
		if r == last {
			if stalled += now.Sub(lastAt); stalled > relayStall {
				return fmt.Errorf("send relay on CPU %d: %d frames queued and none forwarded for %v", t.relay.CPU, queued, relayStall)
			}
		} else {
			t.drainRate, stalled = float64(r-last)/now.Sub(lastAt).Seconds(), 0
		}
		last, lastAt = r, now
	}
}

// checkDelivered fails when a veth peer took none of the first batch. A
// veth counts the frames its peer's NAPI received as its own transmitted
// packets; without NAPI on the peer (no native XDP program, GRO off) the
// kernel drops every frame and counts nothing.
func (t *XDP) checkDelivered(ctx context.Context) error {
	if !t.veth {
		return nil
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		st, err := t.stats()
		if err != nil {
			return err
		}
		if st.TxPackets > t.base.TxPackets {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return PeerNeedsNAPI("send from XDP", t.iface, fmt.Sprintf("none of the first %d frames", t.sent.Load()),
				"send from a socket: --tx socket")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// PeerNeedsNAPI is the error for live frames a veth peer did not take (it
// counts what it took as its end's transmitted packets): without NAPI on
// the peer the kernel drops them. what is the sender ("send from XDP"),
// took how many it took, and instead the way to send without XDP.
func PeerNeedsNAPI(what, iface, took, instead string) error {
	return fmt.Errorf("%s on %s: the veth peer took %s: its end needs NAPI "+
		"(a native-mode XDP program, or `ethtool -K PEER gro on`; on xdpscan's testbed, "+
		"`testbed up --target-napi` or `--queues 2`); or %s", what, iface, took, instead)
}

func (t *XDP) stats() (netlink.LinkStatistics, error) {
	l, err := netlink.LinkByIndex(t.link.Attrs().Index)
	if err != nil || l.Attrs().Statistics == nil {
		return netlink.LinkStatistics{}, fmt.Errorf("read the counters of %s: %v", t.iface, err)
	}
	return *l.Attrs().Statistics, nil
}

// Counts are the frames handed to the interface and those it dropped since
// the transmitter opened (its tx_dropped growth: a full peer ring on veth).
// It reads the interface's counters: call it once per many batches.
func (t *XDP) Counts() (sent, errs uint64) {
	sent = t.sent.Load()
	if t.resend.on() {
		return sent, 0 // every refused frame was sent again (Send)
	}
	if st, err := t.stats(); err == nil && st.TxDropped > t.base.TxDropped {
		errs = st.TxDropped - t.base.TxDropped
	}
	return sent, errs
}

// Close releases the transmitter's memory and unpins the thread. Call it
// from the goroutine that created it.
func (t *XDP) Close() error {
	t.resend.close()
	if t.restore {
		_ = unix.SchedSetaffinity(0, &t.affinity)
	}
	if t.pinned {
		runtime.UnlockOSThread()
	}
	return t.sender.Close()
}
