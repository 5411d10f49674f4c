package testbed

import (
	"fmt"
	"strconv"
)

// MaxQueues bounds --queues: veth takes up to 4096, but each queue is a
// NAPI instance (and with threaded NAPI a kernel thread) per end.
const MaxQueues = 64

// queueArgs are `ip link add`'s arguments for a veth end with n RX and TX
// queues (none for the default single queue).
func queueArgs(n int) []string {
	if n <= 1 {
		return nil
	}
	q := strconv.Itoa(n)
	return []string{"numtxqueues", q, "numrxqueues", q}
}

// spreadQueues makes receive work spread over the CPUs on a testbed with
// several queues: GRO on at both ends gives each RX queue its NAPI
// instance (veth's XDP and GRO path; a native XDP program does the same),
// and threaded NAPI runs each instance in its own kernel thread, which the
// scheduler puts on any CPU, instead of in the softirq of the CPU that
// sent the frame. A sender's CPU picks its TX queue (AF_PACKET: the CPU
// number modulo the queues), and veth delivers TX queue i into the peer's
// RX queue i: senders on different CPUs feed different RX queues.
func (tb *Testbed) spreadQueues() error {
	if tb.Queues <= 1 {
		return nil
	}
	q := strconv.Itoa(tb.Queues)
	for _, x := range [][2]string{{tb.ScanNS(), ScanIf}, {tb.TargetNS(), TargetIf}} {
		// veth creates numrxqueues but uses one until told (ethtool -l
		// shows "current 1"); a sender whose CPU picks TX queue 1 then
		// feeds an RX queue that is not there, and once the peer's ring
		// fills, veth stops TX queue 1 for good (its wakeup comes from
		// RX queue 0's NAPI): the scan stalls on ENOBUFS.
		if err := run("ip", "netns", "exec", x[0], "ethtool", "-L", x[1], "rx", q, "tx", q); err != nil {
			return err
		}
		if err := run("ip", "netns", "exec", x[0], "ethtool", "-K", x[1], "gro", "on"); err != nil {
			return err
		}
		// XPS: CPU c sends on TX queue c % N. Without it AF_PACKET's
		// choice fell to the flow hash, the same for every frame of a
		// flood: two senders on two CPUs both fed queue 0 (500k frames:
		// 34k/s, against 133k/s with XPS, on this busy 2-CPU machine).
		for i := 0; i < tb.Queues; i++ {
			var mask uint64
			for c := i; c < min(64, numCPU()); c += tb.Queues {
				mask |= 1 << c
			}
			if mask == 0 {
				continue
			}
			xps := fmt.Sprintf("echo %x > /sys/class/net/%s/queues/tx-%d/xps_cpus", mask, x[1], i)
			if err := run("ip", "netns", "exec", x[0], "sh", "-c", xps); err != nil {
				return fmt.Errorf("XPS on %s queue %d: %w", x[1], i, err)
			}
		}
		if !tb.threadedNAPI() {
			continue
		}
		cmd := fmt.Sprintf("echo 1 > /sys/class/net/%s/threaded", x[1])
		if err := run("ip", "netns", "exec", x[0], "sh", "-c", cmd); err != nil {
			return fmt.Errorf("threaded NAPI on %s: %w", x[1], err)
		}
	}
	return nil
}

// vethArgs is the `ip link add` of the testbed's veth pair between
// namespaces s and t, each end with n queues.
func vethArgs(s, t string, n int) []string {
	args := append([]string{"ip", "link", "add", ScanIf, "netns", s, "address", ScanMAC.String()}, queueArgs(n)...)
	args = append(args, "type", "veth", "peer", "name", TargetIf, "netns", t, "address", TargetMAC.String())
	return append(args, queueArgs(n)...)
}

// threadedNAPI says whether the queues' NAPI runs in kernel threads: on
// the kernel target, so the TCP stack's work spreads over the CPUs; not on
// the XDP target, which is there for scan --tx xdp. Its frames reach the
// target's queue of the sending CPU (veth_select_rxq: the CPU number
// modulo the queues), and only a NAPI run in that CPU's softirq, after
// each of the sender's kernel batches, empties the 256-slot ring before
// the next batch: a NAPI thread waits for the sender's time slice. Measured
// at the maximum rate, /16 x 4 ports, 2 queues, one sender: threaded,
// 139,440 of 348,240 frames refused (sent again) and 197,269 of 245,760
// open found (the responder's replies overflowed the scanner's ring the
// same way); in the softirq, 0 refused and all found, with 1 and 2
// senders.
func (tb *Testbed) threadedNAPI() bool { return tb.Target != TargetXDP }
