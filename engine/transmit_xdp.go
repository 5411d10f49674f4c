package engine

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

// XDPBatch is how many frames one XDPTransmitter.Send takes: four of
// live-frames mode's kernel batches per syscall. Through a relay
// (XDPRelayBatch) nothing on the sending CPU runs between the kernel's
// batches, so a call can be longer, and each call's fixed cost (~12 us,
// and a page pool set up and torn down) is paid once per 1024 frames.
const (
	XDPBatch      = 256
	XDPRelayBatch = 1024
)

// xdpBatch is the frames per call for a transmitter with or without relay.
func xdpBatch(relay *loader.SendRelay) int {
	if relay != nil {
		return XDPRelayBatch
	}
	return XDPBatch
}

// XDPTransmitter sends frames from the kernel (scan --tx xdp): Fill writes
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
type XDPTransmitter struct {
	sender  *loader.Sender
	iface   string
	link    netlink.Link
	veth    bool
	checked bool
	base    netlink.LinkStatistics
	sent    atomic.Uint64

	relay           *loader.SendRelay
	relayPID        int           // the relay's kernel thread, 0 if not found
	relayBase       time.Duration // its CPU time when the transmitter opened
	pinned, restore bool
	affinity        unix.CPUSet // the thread's CPUs before pin
}

// NewXDPTransmitter sends out of the named interface, in the current
// network namespace, with the transmitter of prog, which must be loaded
// with loader.ScanConfig.SendSlots = XDPBatch (XDPRelayBatch with a
// loader.ScanConfig.SendRelay) and stay attached while it sends. It needs
// CAP_BPF and CAP_NET_ADMIN, and Linux 5.18.
func NewXDPTransmitter(iface string, prog *loader.Scan) (*XDPTransmitter, error) {
	relay := prog.Relay()
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("send from XDP on %s: no such interface; see `ip link`", iface)
	}
	s, err := prog.Sender()
	if err != nil {
		return nil, fmt.Errorf("send from XDP on %s: %w", iface, err)
	}
	if s.Slots() < xdpBatch(relay) {
		s.Close()
		return nil, fmt.Errorf("send from XDP on %s: the program holds %d frames a batch, want %d", iface, s.Slots(), xdpBatch(relay))
	}
	t := &XDPTransmitter{sender: s, iface: iface, link: link, veth: link.Type() == "veth", relay: relay}
	t.base, err = t.stats()
	if err != nil {
		s.Close()
		return nil, err
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
func (t *XDPTransmitter) RelayCPU() time.Duration {
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
func (t *XDPTransmitter) pin() {
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
func (t *XDPTransmitter) Batch() int { return xdpBatch(t.relay) }

// Buffer is slot i's frame buffer, in the program's own memory.
func (t *XDPTransmitter) Buffer(i int) []byte { return t.sender.Frame(i) }

// Send transmits slots [0, len(lens)) with one BPF_PROG_RUN call.
func (t *XDPTransmitter) Send(ctx context.Context, lens []int) error {
	n, err := t.sender.Send(t.link.Attrs().Index, lens)
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

// checkDelivered fails when a veth peer took none of the first batch. A
// veth counts the frames its peer's NAPI received as its own transmitted
// packets; without NAPI on the peer (no native XDP program, GRO off) the
// kernel drops every frame and counts nothing.
func (t *XDPTransmitter) checkDelivered(ctx context.Context) error {
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
			return fmt.Errorf("send from XDP on %s: the veth peer took none of the first %d frames: its end needs NAPI "+
				"(a native-mode XDP program, or `ethtool -K PEER gro on`); or send from a socket: --tx socket",
				t.iface, t.sent.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (t *XDPTransmitter) stats() (netlink.LinkStatistics, error) {
	l, err := netlink.LinkByIndex(t.link.Attrs().Index)
	if err != nil || l.Attrs().Statistics == nil {
		return netlink.LinkStatistics{}, fmt.Errorf("read the counters of %s: %v", t.iface, err)
	}
	return *l.Attrs().Statistics, nil
}

// Counts are the frames handed to the interface and those it dropped since
// the transmitter opened (its tx_dropped growth: a full peer ring on veth).
// It reads the interface's counters: call it once per many batches.
func (t *XDPTransmitter) Counts() (sent, errs uint64) {
	sent = t.sent.Load()
	if st, err := t.stats(); err == nil && st.TxDropped > t.base.TxDropped {
		errs = st.TxDropped - t.base.TxDropped
	}
	return sent, errs
}

// Close releases the transmitter's memory and unpins the thread. Call it
// from the goroutine that created it.
func (t *XDPTransmitter) Close() error {
	if t.restore {
		_ = unix.SchedSetaffinity(0, &t.affinity)
	}
	if t.pinned {
		runtime.UnlockOSThread()
	}
	return t.sender.Close()
}
