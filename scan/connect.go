package scan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/transmit"
	"golang.org/x/sys/unix"
)

// The connect scan (--connect) needs no privilege: the kernel's own TCP and
// UDP sockets do the probing, so it works where raw sockets and XDP are not
// allowed, at the cost of one socket per probe in flight.
//
// TCP: a non-blocking connect per (address, port) with SO_LINGER 0, so
// closing an established connection sends RST instead of leaving TIME_WAIT
// behind (a large scan would otherwise exhaust the local port range).
// UDP: a connected socket with IP_RECVERR sends the same payload as the raw
// scan; a reply means open, and an ICMP error is read from the socket's
// error queue (recvmsg MSG_ERRQUEUE) with its type, code and sender.

// ConnectStats are the figures only the connect scan has.
type ConnectStats struct {
	Workers int `json:"workers"`
	// NofileSoft is RLIMIT_NOFILE's soft limit after raising it to the hard one.
	NofileSoft uint64 `json:"nofile_soft"`
	// FDBackoffs counts EMFILE/ENFILE (out of descriptors): each waited, then retried.
	FDBackoffs uint64 `json:"fd_backoffs"`
	// PortWaits counts EADDRNOTAVAIL (local ports exhausted): each waited, then retried.
	PortWaits uint64 `json:"local_port_waits"`
	// Timeouts are pairs with no answer to any probe (the first and
	// --retries re-probes), each waiting its adaptive timeout: filtered,
	// not listed.
	Timeouts uint64 `json:"timeouts"`
	// Reprobes are the probes sent again after a timeout (--retries);
	// Recovered the pairs that answered only to one of them.
	Reprobes  uint64 `json:"reprobes"`
	Recovered uint64 `json:"recovered"`
	// Timing is the round trips measured per family and protocol and the
	// timeout each ended with (see connect_timing.go).
	Timing []ConnectTiming `json:"timing,omitempty"`
	// Errors are probes that failed otherwise; FirstError says how.
	Errors     uint64 `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// OpenFDsStart/End count this process's descriptors before and after
	// the scan: equal unless a socket leaked.
	OpenFDsStart int `json:"open_fds_start"`
	OpenFDsEnd   int `json:"open_fds_end"`
}

// ConnectNotice reports a condition the user should know while the scan
// runs (descriptor or port exhaustion); it is called at most once per kind.
type ConnectNotice func(msg string)

// raiseNofile lifts RLIMIT_NOFILE's soft limit to the hard limit and
// returns the new soft limit.
func raiseNofile() (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
			lim = want
		}
	}
	return lim.Cur, nil
}

// openFDs counts the process's open descriptors.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // ReadDir's own descriptor
}

// connectWorkers sizes the pool: what was asked, within the descriptors
// the limit leaves (one per worker, and a margin for the process itself).
func connectWorkers(asked int, nofile uint64, inUse int) (int, error) {
	const margin = 32
	avail := int64(nofile) - int64(inUse) - margin
	if avail < 1 {
		return 0, fmt.Errorf("RLIMIT_NOFILE is %d with %d descriptors in use: no room for a single probe socket; raise it (ulimit -n)", nofile, inUse)
	}
	if asked <= 0 {
		asked = 2048
	}
	return int(min(int64(asked), avail)), nil
}

type connectJob struct {
	addr netip.Addr
	port targets.Port
}

// runConnect is Run for cfg.Connect. Cancelling ctx stops handing out
// probes; the probes already handed out run to their end (their timeout at
// most) unless stop is done too, so an interrupted scan's resume position
// loses no pair.
func runConnect(ctx, stop context.Context, cfg Config, progress *Progress, emit func(Result)) (Stats, error) {
	st := Stats{RxMode: RxConnect, Interface: "kernel sockets"}
	cs := &ConnectStats{OpenFDsStart: openFDs()}
	st.Connect = cs
	nofile, err := raiseNofile()
	if err != nil {
		return st, err
	}
	cs.NofileSoft = nofile
	workers, err := connectWorkers(cfg.Workers, nofile, cs.OpenFDsStart)
	if err != nil {
		return st, err
	}
	cs.Workers = workers
	floor := cfg.ConnectTimeout
	if floor <= 0 {
		floor = time.Second
	}
	// --retries re-probes only the pairs that timed out (probePair), as
	// nmap does, instead of walking every pair again: the walk is one pass.
	retries := cfg.Retries
	cfg.Retries = 0

	var (
		emitMu  sync.Mutex
		counts  struct{ fdBackoffs, portWaits, timeouts, errs, reprobes, recovered atomic.Uint64 }
		errOnce sync.Once
		noticed sync.Map
	)
	notice := func(kind, msg string) {
		if _, dup := noticed.LoadOrStore(kind, true); !dup && cfg.Notice != nil {
			cfg.Notice(msg)
		}
	}
	report := func(r Result) {
		emitMu.Lock()
		defer emitMu.Unlock()
		countResult(progress, r)
		emit(r)
	}
	if cfg.Ready != nil {
		if err := cfg.Ready(); err != nil {
			return st, err
		}
		cs.OpenFDsStart = openFDs() // Ready opens the outputs: they stay open to the end
	}
	p := &prober{timer: &connectTimer{floor: floor}, key: cfg.Key}
	// wait says whether err is a resource to wait for (then the probe is
	// made again) rather than a failed probe.
	wait := func(err error) bool {
		switch {
		case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE):
			counts.fdBackoffs.Add(1)
			notice("fd", fmt.Sprintf("out of file descriptors (%v): waiting for sockets to close; "+
				"raise the limit (ulimit -n) or lower --workers", err))
			return clock.Sleep(stop, 20*time.Millisecond) == nil
		case errors.Is(err, unix.EADDRNOTAVAIL):
			counts.portWaits.Add(1)
			notice("ports", "local ports exhausted (EADDRNOTAVAIL): waiting for the kernel to free them; "+
				"widen net.ipv4.ip_local_port_range or lower --rate")
			return clock.Sleep(stop, 100*time.Millisecond) == nil
		}
		return false
	}
	jobs := make(chan connectJob, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				o := probePair(stop, j, retries, p.probe, wait)
				counts.reprobes.Add(uint64(max(0, o.Probes-1)))
				switch {
				case o.Result.State != "":
					if o.Probes > 1 {
						counts.recovered.Add(1)
					}
					report(o.Result)
				case o.TimedOut:
					counts.timeouts.Add(1)
				case o.Err != nil:
					counts.errs.Add(1)
					errOnce.Do(func() { cs.FirstError = o.Err.Error() })
				}
			}
		}()
	}

	progress.Total.Store(cfg.TotalProbes())
	start := time.Now()
	pos, _ := walkProbes(ctx, cfg, progress, 1, transmit.SocketBatch, func(batch []probeRef) (int, error) {
		for i, p := range batch {
			select {
			case jobs <- connectJob{p.addr, p.port}:
			case <-ctx.Done():
				return i, ctx.Err()
			}
		}
		return len(batch), nil
	})
	close(jobs)
	st.SendS = time.Since(start).Seconds()
	wg.Wait() // every in-flight probe ends within its timeout

	if ctx.Err() != nil {
		st.Interrupted = true
		st.Resume = &pos
	}
	st.ProbesSent = progress.Sent.Load()
	cfg.finishCounts(&st, progress)
	cs.FDBackoffs, cs.PortWaits = counts.fdBackoffs.Load(), counts.portWaits.Load()
	cs.Timeouts, cs.Errors = counts.timeouts.Load(), counts.errs.Load()
	cs.Reprobes, cs.Recovered = counts.reprobes.Load(), counts.recovered.Load()
	cs.Timing = p.timer.timings()
	cs.OpenFDsEnd = openFDs()
	st.ElapsedS = time.Since(start).Seconds()
	return st, nil
}

// prober runs one probe on kernel sockets. Both paths wait on Go's
// netpoller (epoll), never in a blocking syscall, so thousands of probes in
// flight cost thousands of sockets, not threads.
type prober struct {
	timer *connectTimer
	key   probe.CookieKey
}

// probe returns the result (State "" for no answer), or an error for a
// probe that could not be made (EMFILE, EADDRNOTAVAIL, ...).
func (p *prober) probe(ctx context.Context, j connectJob) (Result, error) {
	if j.port.Proto == targets.ProtoUDP {
		return p.probeUDP(ctx, j)
	}
	return p.probeTCP(ctx, j)
}

func (p *prober) probeTCP(ctx context.Context, j connectJob) (Result, error) {
	r := Result{Addr: j.addr, Port: j.port.Num, Proto: "tcp"}
	start := time.Now()
	err := tcpConnect(ctx, j.addr, j.port.Num, p.timer.timeout(j.addr, targets.ProtoTCP))
	r.Time = time.Now()
	if err == nil {
		r.State, r.Reason = StateOpen, "syn-ack"
	} else if r, err = classifyDialError(r, err); err != nil {
		return r, err
	}
	if r.State != "" {
		p.timer.observe(j.addr, targets.ProtoTCP, r.Time.Sub(start))
	}
	return r, nil
}

// classifyDialError turns a failed connect into a result or an error.
func classifyDialError(r Result, err error) (Result, error) {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno) && errno == unix.ECONNREFUSED:
		r.State, r.Reason = StateClosed, "reset"
	case errors.As(err, &errno) && errno == unix.EHOSTUNREACH:
		r.State, r.Reason = StateFiltered, "host-unreach"
	case errors.As(err, &errno) && errno == unix.ENETUNREACH:
		r.State, r.Reason = StateFiltered, "net-unreach"
	case errors.As(err, &errno) && (errno == unix.EACCES || errno == unix.EPERM):
		// An ICMP admin prohibited answer, or our own firewall's reject.
		r.State, r.Reason = StateFiltered, "admin-prohibited"
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return Result{}, nil // no answer: filtered, not listed
	case errors.As(err, &errno) && (errno == unix.ETIMEDOUT):
		return Result{}, nil
	default:
		return Result{}, err
	}
	return r, nil
}

func (p *prober) probeUDP(ctx context.Context, j connectJob) (Result, error) {
	r := Result{Addr: j.addr, Port: j.port.Num, Proto: "udp"}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(j.addr, j.port.Num)))
	if err != nil {
		return classifyDialError(r, err)
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return Result{}, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if j.addr.Is6() {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	}); err != nil || serr != nil {
		return Result{}, fmt.Errorf("IP_RECVERR: %w", errors.Join(err, serr))
	}
	start := time.Now()
	deadline := start.Add(p.timer.timeout(j.addr, targets.ProtoUDP))
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	if _, err := conn.Write(probe.PayloadFor(j.port.Num).Data); err != nil {
		return classifyDialError(r, err)
	}
	var buf [512]byte
	var oob [512]byte
	for {
		// Reading the error queue first: with IP_RECVERR an ICMP error
		// also fails the next read, but only the queue says which error.
		var (
			ee       *unix.SockExtendedErr
			offender netip.Addr
			gotData  bool
			rerr     error
		)
		answered := func(fd uintptr) bool {
			_, oobn, _, _, e := unix.Recvmsg(int(fd), buf[:], oob[:], unix.MSG_ERRQUEUE)
			if e == nil {
				ee, offender = parseRecvErr(oob[:oobn])
				return true
			}
			n, e := unix.Read(int(fd), buf[:])
			if e == unix.EAGAIN {
				return false // wait for data or an error (EPOLLERR) on the netpoller
			}
			gotData, rerr = n >= 0 && e == nil, e
			return true
		}
		err := raw.Read(answered)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// On a starved machine the deadline's timer can be handled
			// before the answer's readiness in the same late round: one
			// last look at the socket before calling it unanswered.
			done := false
			if cerr := raw.Control(func(fd uintptr) { done = answered(fd) }); cerr == nil && done {
				err = nil
			}
		}
		r.Time = time.Now()
		switch {
		case err != nil:
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return Result{}, nil // open|filtered: no answer
			}
			return Result{}, err
		case ee != nil:
			family := uint8(4)
			switch ee.Origin {
			case unix.SO_EE_ORIGIN_ICMP:
			case unix.SO_EE_ORIGIN_ICMP6:
				family = 6
			default:
				continue // a local error report: keep waiting
			}
			r.State, r.Reason = StateFiltered, probe.ICMPReason(family, ee.Type, ee.Code)
			if r.Reason == "port-unreach" {
				r.State = StateClosed
			}
			if offender.IsValid() && offender != j.addr {
				r.From = offender
			}
			p.timer.observe(j.addr, targets.ProtoUDP, r.Time.Sub(start))
			return r, nil
		case gotData:
			r.State, r.Reason = StateOpen, "udp-response"
			p.timer.observe(j.addr, targets.ProtoUDP, r.Time.Sub(start))
			return r, nil
		case rerr != nil:
			// The pending error was consumed by read before the queue was
			// looked at; the queue still holds its details next round.
			continue
		}
	}
}

// parseRecvErr reads the IP_RECVERR or IPV6_RECVERR control message: the
// extended error and the address of the host that sent the ICMP error.
func parseRecvErr(oob []byte) (*unix.SockExtendedErr, netip.Addr) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, netip.Addr{}
	}
	for _, m := range msgs {
		v4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
		v6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if !v4 && !v6 {
			continue
		}
		const eeLen = int(unsafe.Sizeof(unix.SockExtendedErr{}))
		if len(m.Data) < eeLen {
			continue
		}
		ee := *(*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		var from netip.Addr
		// SO_EE_OFFENDER: a sockaddr_in or sockaddr_in6 right after the
		// extended error; family 0 when the kernel had none.
		off := m.Data[eeLen:]
		if len(off) < 2 {
			return &ee, from
		}
		switch family := binary.NativeEndian.Uint16(off); {
		case family == unix.AF_INET && len(off) >= 8:
			from = netip.AddrFrom4([4]byte(off[4:8]))
		case family == unix.AF_INET6 && len(off) >= 24:
			from = netip.AddrFrom16([16]byte(off[8:24])).Unmap()
		}
		return &ee, from
	}
	return nil, netip.Addr{}
}
