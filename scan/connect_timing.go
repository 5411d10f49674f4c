package scan

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/targets"
)

// How long the connect scan waits for an answer. A fixed timeout equal to
// the kernel's first SYN retransmission (1s) gives up exactly when the
// kernel sends the SYN again: on a busy machine (a listener's queue
// momentarily full, a softirq late) the first SYN goes unanswered and the
// pair was reported filtered although the retransmitted SYN would have been
// answered a few milliseconds later. So a TCP probe always waits for one
// retransmission plus a round trip, and the round trip is measured, per
// address family and protocol, as TCP measures it (RFC 6298).

const (
	// synRetransmit is when Linux first sends an unanswered SYN again
	// (TCP_TIMEOUT_INIT); each later retransmission doubles the wait.
	synRetransmit = time.Second
	// rttMargin is the least margin allowed for an answer, Linux's
	// TCP_RTO_MIN: scheduling delays on a loaded machine are of this order
	// even when the measured round trips are microseconds (veth).
	rttMargin = 200 * time.Millisecond
)

// rttEstimator is RFC 6298's smoothed round trip and its variation.
type rttEstimator struct {
	mu           sync.Mutex
	srtt, rttvar time.Duration
	samples      uint64
}

// add takes one measured round trip.
func (e *rttEstimator) add(r time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.samples == 0 {
		e.srtt, e.rttvar = r, r/2
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
	e.samples++
}

// rto is how long an answer may take: srtt + 4 rttvar, at least rttMargin;
// ok is false before the first sample.
func (e *rttEstimator) rto() (d time.Duration, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.samples == 0 {
		return 0, false
	}
	return max(rttMargin, e.srtt+4*e.rttvar), true
}

func (e *rttEstimator) snapshot() (srtt, rttvar time.Duration, samples uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srtt, e.rttvar, e.samples
}

// connectTimer gives each probe its timeout from the round trips measured
// so far. floor is --connect-timeout: no probe waits less, and until a
// family and protocol has its first answer it is also the margin a TCP
// probe allows after the retransmitted SYN.
type connectTimer struct {
	floor time.Duration
	est   [4]rttEstimator // [timingIndex]
}

func timingIndex(addr netip.Addr, proto uint8) int {
	i := 0
	if addr.Is6() {
		i = 2
	}
	if proto == targets.ProtoUDP {
		i++
	}
	return i
}

// timeout is how long to wait for a probe to addr over proto. TCP: one
// SYN retransmission plus the estimated answer time; UDP, which the kernel
// never retransmits: the estimated answer time.
func (t *connectTimer) timeout(addr netip.Addr, proto uint8) time.Duration {
	margin, ok := t.est[timingIndex(addr, proto)].rto()
	if !ok {
		margin = t.floor
	}
	if proto == targets.ProtoUDP {
		return max(t.floor, margin)
	}
	return max(t.floor, synRetransmit+margin)
}

// observe takes the time a probe took to be answered. Karn's rule: a TCP
// answer that came after the SYN was sent again does not say which SYN it
// answers, so it is no sample.
func (t *connectTimer) observe(addr netip.Addr, proto uint8, took time.Duration) {
	if proto != targets.ProtoUDP && took >= synRetransmit {
		return
	}
	t.est[timingIndex(addr, proto)].add(took)
}

// ConnectTiming is what the connect scan measured for one family and
// protocol, and the timeout it ended with.
type ConnectTiming struct {
	Family    string  `json:"family"` // "ipv4" or "ipv6"
	Proto     string  `json:"proto"`
	Samples   uint64  `json:"samples"`
	SRTTMS    float64 `json:"srtt_ms"`
	RTTVarMS  float64 `json:"rttvar_ms"`
	TimeoutMS float64 `json:"timeout_ms"`
}

// timings lists the families and protocols that were measured.
func (t *connectTimer) timings() []ConnectTiming {
	var out []ConnectTiming
	for _, fam := range []struct {
		name string
		addr netip.Addr
	}{{"ipv4", netip.IPv4Unspecified()}, {"ipv6", netip.IPv6Unspecified()}} {
		for _, proto := range []uint8{targets.ProtoTCP, targets.ProtoUDP} {
			srtt, rttvar, n := t.est[timingIndex(fam.addr, proto)].snapshot()
			if n == 0 {
				continue
			}
			out = append(out, ConnectTiming{Family: fam.name, Proto: targets.ProtoName(proto), Samples: n,
				SRTTMS: ms(srtt), RTTVarMS: ms(rttvar), TimeoutMS: ms(t.timeout(fam.addr, proto))})
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pairOutcome is how one (address, port) ended.
type pairOutcome struct {
	Result   Result // State "" when it never answered
	Probes   int    // probes sent for it: 1 + re-probes
	TimedOut bool   // no answer to any probe: filtered, not listed
	Err      error  // a probe that could not be made
}

// probePair probes one pair until it answers, or times out retries+1
// times. A probe that could not be made for want of a resource (descriptors,
// local ports) is not a probe: wait says whether it waited for that resource
// (then the same probe is made again) or the error is final. One worker owns
// a pair from start to end, so a pair is reported at most once.
func probePair(ctx context.Context, j connectJob, retries int,
	probe func(context.Context, connectJob) (Result, error), wait func(error) bool) pairOutcome {
	var o pairOutcome
	for o.Probes <= retries {
		r, err := probe(ctx, j)
		if err != nil {
			if wait(err) {
				continue
			}
			if ctx.Err() == nil {
				o.Err = err
			}
			return o
		}
		o.Probes++
		if r.State != "" {
			o.Result = r
			return o
		}
		if ctx.Err() != nil {
			// Cut short by the interrupt: not an answer, not a timeout.
			return o
		}
	}
	o.TimedOut = true
	return o
}
