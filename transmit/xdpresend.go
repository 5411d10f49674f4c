package transmit

import (
	"fmt"
	"net"
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
// sent again whole once the ring has had time to drain, in smaller calls
// from then on (sendExact): a probe may go out twice (the replies are
// deduplicated), none is lost.
//
// The count is read after every call (one pread of sysfs's tx_dropped,
// see open). It is the interface's, over all queues: with several
// senders, one may resend a batch for another's refusal (a duplicate),
// never miss its own, since the driver counts a call's refusals before
// the call returns.
type xdpResend struct {
	drops   refusedCounter
	last    uint64        // the count after the last call
	chunk   int           // frames a call sends (sendExact)
	clean   int           // calls since the last refusal
	frames  atomic.Uint64 // frames sent again
	refused atomic.Uint64 // refusals seen (the count's growth)
}

// A call carries at least resendChunkMin frames (one of the kernel's
// 16-frame bulks to the driver), and doubles after resendGrowAfter calls
// without a refusal.
const (
	resendChunkMin  = 16
	resendGrowAfter = 64
)

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

// open starts counting on iface. Without the driver's counters it stays
// off and the transmitter counts tx_dropped as lost, as before; the error
// says why (a veth has them: NewXDP fails there rather than scan inexactly).
//
// The driver's counters (ETHTOOL_GSTATS) say whether it counts refusals;
// the count read after every call is the interface's tx_dropped in sysfs
// where that is this namespace's (sysfsDropped says why), else those
// counters.
func (r *xdpResend) open(iface string, ifindex int, mac net.HardwareAddr) error {
	x, err := openXmitDrops(iface, vethXmitErrors)
	if err != nil {
		return err
	}
	var d refusedCounter = x
	if s, err := openSysfsDropped(iface, ifindex, mac); err == nil {
		x.Close()
		d = s
	}
	last, err := d.Sum()
	if err != nil {
		d.Close()
		return err
	}
	r.drops, r.last = d, last
	return nil
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

// sendExact sends the batch in calls of r.chunk frames, reads the refused
// count after each, and sends a call again (after letting the peer's NAPI
// run) while the count grows. A refusal halves the calls (down to
// resendChunkMin) and resendGrowAfter clean calls double them again (up
// to the batch): whole 256-frame resends never got through a ring that
// a slow NAPI thread drains a poll (64 frames) at a time, measured 452,385
// refusals in 2 s and no progress; smaller calls fit the room it makes.
// It returns how many slots went out at least once.
func (t *XDP) sendExact(lens []int, batch uint32) (int, error) {
	r := &t.resend
	ifindex := t.link.Attrs().Index
	t.sender.SetBatch(lens)
	if r.chunk == 0 {
		r.chunk = XDPBatch
	}
	sent := 0 // slots [0, sent) went out at least once
	var since time.Time
	for from, attempt := 0, 0; from < len(lens); {
		to := min(len(lens), from+r.chunk)
		n, err := t.sender.SendRange(ifindex, from, to, min(batch, uint32(to-from)))
		if to > sent {
			r.frames.Add(uint64(max(0, sent-from)))
			sent = to
		} else {
			r.frames.Add(uint64(to - from))
		}
		if err != nil {
			return from, err
		}
		if n != to-from {
			return from, fmt.Errorf("the program refused %d of %d frames", to-from-n, to-from)
		}
		d, err := r.drops.Sum()
		if err != nil {
			return from, fmt.Errorf("count refused frames (resend needs them; --tx socket does not): %w", err)
		}
		grew := d - r.last
		r.last = d
		if grew == 0 {
			from, attempt = to, 0
			if r.clean++; r.clean >= resendGrowAfter && r.chunk < XDPBatch {
				r.chunk, r.clean = min(2*r.chunk, XDPBatch), 0
			}
			continue
		}
		r.refused.Add(grew)
		r.clean, r.chunk = 0, max(r.chunk/2, resendChunkMin)
		if attempt == 0 {
			since = time.Now()
			unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		} else {
			if time.Since(since) > resendStall {
				return from, fmt.Errorf("the driver refused frames of every resend for %v (%d refused): the peer drains nothing; "+
					"check it is up, or send from a socket: --tx socket", resendStall, r.refused.Load())
			}
			time.Sleep(min(resendNapMin<<min(attempt-1, 8), resendNapMax))
		}
		attempt++
	}
	return sent, nil
}
