package transmit

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// xdpResend makes --tx xdp exact where the driver counts the frames its
// ndo_xdp_xmit refuses (veth: a full peer ring). BPF_PROG_RUN in
// live-frames mode hands each kernel batch's frames to the driver, which
// on veth puts them in the 256-slot ring of the peer's receive queue this
// CPU maps to (smp_processor_id() % the peer's queues) and frees the ones
// that do not fit, counting them in tx_queue_N_xdp_xmit_errors; the caller
// is told nothing. That ring fills whenever the peer's NAPI does not drain
// it between our kernel batches: it runs on another CPU (two senders
// feeding one queue, measured: 116,385 of 262,144 frames refused at
// 239k/s), or in a kernel thread (threaded NAPI) that waits for our time
// slice. Which frames of a call were refused cannot be known (the driver
// refuses the tail of each 16-frame bulk), so a call whose count grew is
// sent again whole once the ring has had time to drain: a probe may go out
// twice (the replies are deduplicated), none is lost.
//
// The count is read after every call (one ETHTOOL_GSTATS ioctl, ~2 us
// against ~30 us for a call of 256 frames). It is the interface's, over
// all queues: with several senders, one may resend a batch for another's
// refusal (a duplicate), never miss its own, since the driver counts a
// call's refusals before the call returns.
type xdpResend struct {
	drops   *xmitDrops
	last    uint64        // the count after the last call
	frames  atomic.Uint64 // frames sent again
	refused atomic.Uint64 // refusals seen (the count's growth)
}

// resendStall is how long calls may go on being refused before Send gives
// up: the peer drains nothing (its NAPI never runs, or it went down).
const resendStall = 2 * time.Second

// The waits between a refused call and its resend: the first yields this
// CPU (threaded NAPI, or ksoftirqd, may be waiting for it), the next sleep
// from resendNapMin, doubling up to resendNapMax.
const (
	resendNapMin = 50 * time.Microsecond
	resendNapMax = 2 * time.Millisecond
)

// open starts counting on iface; without the driver's counters it stays
// off and the transmitter counts tx_dropped as lost, as before.
func (r *xdpResend) open(iface string) {
	d, err := openXmitDrops(iface, vethXmitErrors)
	if err != nil {
		return
	}
	last, err := d.Sum()
	if err != nil {
		d.Close()
		return
	}
	r.drops, r.last = d, last
}

func (r *xdpResend) on() bool { return r.drops != nil }

func (r *xdpResend) close() {
	if r.drops != nil {
		r.drops.Close()
		r.drops = nil
	}
}

// Resent is the frames sent again because the interface refused frames of
// their call, and the refusals it counted (frames less refusals is at most
// the probes that went out twice).
func (t *XDP) Resent() (frames, refused uint64) {
	return t.resend.frames.Load(), t.resend.refused.Load()
}

// resendDropped sends the call's frames (still in the slots) again for as
// long as the interface counts refusals after it.
func (t *XDP) resendDropped(lens []int, batch uint32) error {
	r := &t.resend
	if r.drops == nil {
		return nil
	}
	var first time.Time
	for attempt := 0; ; attempt++ {
		d, err := r.drops.Sum()
		if err != nil {
			return fmt.Errorf("count refused frames (resend needs them; --tx socket does not): %w", err)
		}
		grew := d - r.last
		r.last = d
		if grew == 0 {
			return nil
		}
		r.refused.Add(grew)
		if attempt == 0 {
			first = time.Now()
			unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		} else {
			if time.Since(first) > resendStall {
				return fmt.Errorf("the driver refused frames of every resend for %v (%d refused): the peer drains nothing; "+
					"check it is up, or send from a socket: --tx socket", resendStall, r.refused.Load())
			}
			time.Sleep(min(resendNapMin<<min(attempt-1, 8), resendNapMax))
		}
		n, err := t.sender.Send(t.link.Attrs().Index, lens, batch)
		r.frames.Add(uint64(n))
		if err != nil {
			return err
		}
		if n != len(lens) {
			return fmt.Errorf("the program refused %d of %d frames sent again", len(lens)-n, len(lens))
		}
	}
}
