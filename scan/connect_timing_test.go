package scan

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/targets"
	"golang.org/x/sys/unix"
)

// RFC 6298 section 2: the first sample sets SRTT = R and RTTVAR = R/2;
// each later one RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, then
// SRTT = 7/8 SRTT + 1/8 R.
func TestRTTEstimatorFollowsRFC6298(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name             string
		samples          []time.Duration
		srtt, rttvar     time.Duration
		rto              time.Duration
		noSampleExpected bool
	}{
		{name: "no sample", noSampleExpected: true},
		{name: "one sample", samples: []time.Duration{100 * ms}, srtt: 100 * ms, rttvar: 50 * ms, rto: 300 * ms},
		{name: "a steady path", samples: []time.Duration{100 * ms, 100 * ms}, srtt: 100 * ms, rttvar: 37500 * time.Microsecond, rto: 250 * ms},
		// 3/4*50 + 1/4*|100-500| = 137.5; 7/8*100 + 1/8*500 = 150.
		{name: "a late answer widens the margin", samples: []time.Duration{100 * ms, 500 * ms}, srtt: 150 * ms, rttvar: 137500 * time.Microsecond, rto: 700 * ms},
		// Microsecond round trips (veth) still leave the scheduler its margin.
		{name: "fast path, margin floored", samples: []time.Duration{50 * time.Microsecond, 60 * time.Microsecond}, srtt: 51250 * time.Nanosecond, rttvar: 21250 * time.Nanosecond, rto: rttMargin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e rttEstimator
			for _, s := range tc.samples {
				e.add(s)
			}
			rto, ok := e.rto()
			if tc.noSampleExpected {
				if ok {
					t.Fatalf("rto %v before any sample", rto)
				}
				return
			}
			srtt, rttvar, n := e.snapshot()
			if !ok || srtt != tc.srtt || rttvar != tc.rttvar || rto != tc.rto || n != uint64(len(tc.samples)) {
				t.Fatalf("srtt %v rttvar %v rto %v (%d samples); want %v %v %v (%d)", srtt, rttvar, rto, n, tc.srtt, tc.rttvar, tc.rto, len(tc.samples))
			}
		})
	}
}

// A TCP probe always outlasts the kernel's first SYN retransmission by a
// margin for its answer; UDP, never retransmitted, waits the margin; and
// --connect-timeout is a floor for both.
func TestConnectTimeoutCoversTheSYNRetransmission(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:2::1")
	ms := time.Millisecond
	tests := []struct {
		name    string
		floor   time.Duration
		observe []time.Duration // TCP and UDP samples over IPv4
		tcp4    time.Duration
		udp4    time.Duration
		tcp6    time.Duration
	}{
		{name: "default, nothing measured yet", floor: time.Second, tcp4: 2 * time.Second, udp4: time.Second, tcp6: 2 * time.Second},
		{name: "short floor, nothing measured", floor: 400 * ms, tcp4: 1400 * ms, udp4: 400 * ms, tcp6: 1400 * ms},
		{name: "fast path measured: the least margin", floor: 400 * ms, observe: []time.Duration{100 * time.Microsecond},
			tcp4: synRetransmit + rttMargin, udp4: 400 * ms, tcp6: 1400 * ms},
		{name: "busy path measured: a wider margin", floor: 400 * ms, observe: []time.Duration{300 * ms},
			tcp4: synRetransmit + 900*ms, udp4: 900 * ms, tcp6: 1400 * ms},
		{name: "a floor above the adaptive timeout wins", floor: 5 * time.Second, observe: []time.Duration{300 * ms},
			tcp4: 5 * time.Second, udp4: 5 * time.Second, tcp6: 6 * time.Second},
		// An answer after the SYN was sent again may answer either SYN.
		{name: "Karn: a TCP answer after the retransmission is no sample", floor: 400 * ms, observe: []time.Duration{1100 * ms},
			tcp4: 1400 * ms, udp4: 1100*ms + 4*550*ms, tcp6: 1400 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := &connectTimer{floor: tc.floor}
			for _, s := range tc.observe {
				tm.observe(v4, targets.ProtoTCP, s)
				tm.observe(v4, targets.ProtoUDP, s)
			}
			got := [3]time.Duration{tm.timeout(v4, targets.ProtoTCP), tm.timeout(v4, targets.ProtoUDP), tm.timeout(v6, targets.ProtoTCP)}
			if want := [3]time.Duration{tc.tcp4, tc.udp4, tc.tcp6}; got != want {
				t.Fatalf("timeouts tcp4/udp4/tcp6 %v, want %v", got, want)
			}
			if got[0] <= synRetransmit || got[2] <= synRetransmit {
				t.Fatalf("a TCP timeout %v does not outlast the SYN retransmission", got)
			}
		})
	}
}

// probePair's bookkeeping: what was re-probed, what ended how, and that a
// wait for a resource is not a probe.
func TestProbePairRetriesOnlyTimeouts(t *testing.T) {
	open := Result{State: "open", Reason: "syn-ack"}
	closed := Result{State: "closed", Reason: "reset"}
	timeout := Result{}
	emfile := errors.New("socket: " + unix.EMFILE.Error())
	boom := errors.New("connect: something else")
	type step struct {
		r   Result
		err error
	}
	tests := []struct {
		name     string
		retries  int
		script   []step
		state    string
		probes   int
		timedOut bool
		err      error
	}{
		{name: "answered at once", retries: 2, script: []step{{r: open}}, state: "open", probes: 1},
		{name: "no retries: one timeout is final", retries: 0, script: []step{{r: timeout}}, probes: 1, timedOut: true},
		{name: "recovered by a re-probe", retries: 2, script: []step{{r: timeout}, {r: timeout}, {r: closed}}, state: "closed", probes: 3},
		{name: "filtered only after every re-probe", retries: 2, script: []step{{r: timeout}, {r: timeout}, {r: timeout}}, probes: 3, timedOut: true},
		{name: "a resource wait is not a probe", retries: 0, script: []step{{err: emfile}, {err: emfile}, {r: open}}, state: "open", probes: 1},
		{name: "a failed probe is not retried", retries: 3, script: []step{{r: timeout}, {err: boom}}, probes: 1, err: boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			probe := func(context.Context, connectJob) (Result, error) {
				if calls >= len(tc.script) {
					t.Fatalf("probe %d: the script has %d", calls+1, len(tc.script))
				}
				s := tc.script[calls]
				calls++
				return s.r, s.err
			}
			wait := func(err error) bool { return err == emfile }
			o := probePair(context.Background(), connectJob{}, tc.retries, probe, wait)
			if string(o.Result.State) != tc.state || o.Probes != tc.probes || o.TimedOut != tc.timedOut || o.Err != tc.err {
				t.Fatalf("got %+v; want state %q, %d probes, timed out %v, error %v", o, tc.state, tc.probes, tc.timedOut, tc.err)
			}
			if calls != len(tc.script) {
				t.Fatalf("%d of %d scripted probes made", calls, len(tc.script))
			}
		})
	}
}

// An interrupted scan neither re-probes nor counts a timeout: the pair is
// left for --resume.
func TestProbePairStopsOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	probe := func(context.Context, connectJob) (Result, error) {
		calls++
		cancel() // the interrupt lands while the first probe waits
		return Result{}, nil
	}
	o := probePair(ctx, connectJob{}, 5, probe, func(error) bool { return false })
	if calls != 1 || o.TimedOut || o.Result.State != "" || o.Err != nil {
		t.Fatalf("%d probes, outcome %+v; want one probe and no verdict", calls, o)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	o = probePair(ctx2, connectJob{}, 5, func(context.Context, connectJob) (Result, error) {
		return Result{}, context.Canceled
	}, func(error) bool { return false })
	if o.Err != nil || o.TimedOut {
		t.Fatalf("a probe cut by the interrupt reported %+v", o)
	}
}
