package capture

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/pcap"
	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/internal/libpcap"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

// Config is one capture.
type Config struct {
	Iface     string
	Filter    string // tcpdump expression; "" matches everything
	Snaplen   uint32
	Count     uint64 // stop after this many matched packets (0: no limit)
	CountOnly bool
	RxMode    loader.RxMode // loader.RxXDP or loader.RxPcap
	XDPMode   loader.Mode
	// ReadFile, if set, reads packets from this pcap or pcapng file ("-":
	// standard input) and runs each through the capture program with
	// BPF_PROG_RUN instead of capturing on Iface (offline.go).
	ReadFile string
	// RingBytes sizes the ring (-B; a power of two, at least a page; 0: loader.RingBytes).
	RingBytes uint32
	// Immediate wakes the reader for every record (--immediate-mode)
	// instead of once loader.RingWakeupBytes have gathered.
	Immediate bool
	// Reading, if set, is told what the -r file is before Ready is called.
	Reading func(desc string)
	// Direction is -Q: received packets (XDP), sent ones (TC egress,
	// attached by EgressHook) or both ("": both).
	Direction  Direction
	EgressHook loader.EgressHook
	// Notice receives what the user should know about the capture's
	// semantics (nil: standard error).
	Notice func(string)
	// Ready, if set, is called once setup is over and packets are being
	// captured (XDP attached and its ring open, or the libpcap handle active
	// with its filter), before the first packet is handed on: the place to
	// open output files and drop privileges. An error ends the capture.
	Ready func() error
	// MoreIfaces are further interfaces captured into the same stream
	// (-i A -i B): one program each, the same rings, records merged in
	// timestamp order; Packet.InterfaceIndex is 0 for Iface, i+1 for
	// MoreIfaces[i].
	MoreIfaces []string
	// Rings spreads records over per-CPU rings ("": loader.RingsAuto,
	// which for a capture means a ring per receiving CPU from
	// autoPerCPUMin such CPUs up: rings.go).
	Rings loader.RingsMode
}

// drainTimeout bounds how long a stopped libpcap capture keeps reading what
// the kernel already queued: under a flood that never pauses, a read timeout
// would never come.
const drainTimeout = 200 * time.Millisecond

// Stats are a capture's final figures (--stats-json).
type Stats struct {
	Seen       uint64 `json:"seen"`        // packets the receive path saw
	Matched    uint64 `json:"matched"`     // packets the filter accepted
	Written    uint64 `json:"written"`     // packets written to the file
	RingLost   uint64 `json:"ring_lost"`   // XDP: ring reserve failures; pcap: kernel drops
	WriterLost uint64 `json:"writer_lost"` // matched packets read but not written: write errors
	// NotWritten are matched packets read after -c's count was reached:
	// not written by choice, not lost.
	NotWritten uint64 `json:"not_written_count_reached"`
	// Offline (-r): frames BPF_PROG_RUN does not take (shorter than 14
	// bytes, or refused; see LinearProgRunBytes) run through libpcap's program in user
	// space; Truncated says the file ended inside a packet.
	UserFiltered uint64          `json:"user_filtered,omitempty"`
	Truncated    bool            `json:"truncated,omitempty"`
	ReadFrom     string          `json:"read_from,omitempty"`
	Bytes        uint64          `json:"bytes"`
	ElapsedS     float64         `json:"elapsed_s"`
	RxMode       loader.RxMode   `json:"rx_mode"`
	XDPMode      string          `json:"xdp_mode"`
	Interface    string          `json:"interface"`
	Counters     loader.Counters `json:"xdp_counters"`
	Interrupted  bool            `json:"interrupted"`
	// Rings: what rings were read and how they merged (XDP only);
	// Interfaces: per interface, when there are several.
	Rings      *RingChoice      `json:"rings,omitempty"`
	Interfaces []InterfaceStats `json:"interfaces,omitempty"`
	Loss       Loss             `json:"loss"`

	// NotWrittenFileLimit: matched packets read after -G with -W closed
	// the last file (not lost: the capture was over).
	NotWrittenFileLimit uint64 `json:"not_written_file_limit,omitempty"`
	// Per direction (XDP path); Seen, Matched, RingLost and Bytes above
	// are their sums.
	Direction Direction `json:"direction,omitempty"`
	Inbound   *DirStats `json:"inbound,omitempty"`
	Outbound  *DirStats `json:"outbound,omitempty"`
}

// Progress is read by the live line.
type Progress struct {
	Written    atomic.Uint64
	WrittenOut atomic.Uint64 // of Written, the packets sent (-Q out)
	WriterLost atomic.Uint64 // rare (write errors): stored each time
	// dir[0] and dir[1]: the inbound and the outbound program's counters
	// since the capture began; nil for a direction not captured.
	dir [2]func() (loader.Counters, error)
	// The counters of every program together, since the capture began
	// (zero for libpcap).
	loader.Running
	// ahead: the verdicts of the XDP program before the capture (xdpahead.go).
	ahead atomic.Pointer[[]*xdpAheadMeter]
}

// Packet is one packet as the capture hands it to its writer. Data
// is only valid during the call.
type Packet struct {
	TimeNs        int64 // wall clock, nanoseconds since the Unix epoch
	CaptureLength int   // len(Data)
	Length        int   // on the wire
	// InterfaceIndex is the file's interface (0: its only one), not the
	// kernel's ifindex.
	InterfaceIndex int
	// Where XDP saw the packet: the interface's RX queue and the CPU that
	// ran the program. FromXDP is false on the libpcap path, which does not
	// say.
	FromXDP      bool
	RxQueue, CPU uint32
	// Outbound: the interface sent the packet (TC egress); else it
	// received it. RxQueue is then the TX queue.
	Outbound bool
	Data     []byte
}

// Run captures until ctx is done or cfg.Count packets were written.
// write receives each packet (nil in count-only mode). The XDP program is
// detached and the ring drained before it returns.
func Run(ctx context.Context, cfg Config, progress *Progress, write func(*Packet) error) (Stats, error) {
	st := Stats{RxMode: cfg.RxMode, Interface: cfg.Iface}
	// libpcap can take minutes on a long filter: a signal must not wait.
	var raw []cbpf.RawInstruction
	var frameView bool
	var err error
	if cfg.RxMode != loader.RxPcap {
		if raw, frameView, err = compileXDP(ctx, cfg); err != nil {
			return st, err
		}
	} else if _, err = filter.CompileContext(ctx, cfg.Filter, int(cfg.Snaplen)); err != nil {
		return st, err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	nic := startNICLoss(cfg.Iface)
	var writeErr error
	emit := func(p *Packet) {
		if cfg.Count > 0 && st.Written >= cfg.Count {
			st.NotWritten++
			return
		}
		if write != nil {
			if err := write(p); err != nil {
				if errors.Is(err, ErrFileLimit) { // -G with -W: done, as tcpdump
					st.NotWrittenFileLimit++
					stop()
					return
				}
				st.WriterLost++
				progress.WriterLost.Store(st.WriterLost)
				if writeErr == nil {
					writeErr = err
					stop()
				}
				return
			}
		}
		st.Written++
		st.Bytes += uint64(p.CaptureLength)
		if p.Outbound && st.Outbound != nil {
			st.Outbound.Written++
			if st.Outbound.Written%256 == 0 {
				progress.WrittenOut.Store(st.Outbound.Written)
			}
		} else if st.Inbound != nil {
			st.Inbound.Written++
		}
		// The status line reads this once a second: an atomic store per
		// packet (a full barrier on x86) would cost more than it tells.
		if st.Written%256 == 0 {
			progress.Written.Store(st.Written)
		}
		if cfg.Count > 0 && st.Written == cfg.Count {
			stop()
		}
	}
	switch {
	case cfg.ReadFile != "":
		err = captureOffline(ctx, cfg, raw, frameView, &st, emit)
	case cfg.RxMode == loader.RxPcap:
		ahead := aheadOf(cfg.Iface, progress) // libpcap sees only what an XDP program there passes
		err = capturePcap(ctx, cfg, &st, emit)
		ahead.finish(&st)
	default:
		err = captureXDP(ctx, cfg, raw, frameView, progress, &st, emit)
	}
	st.ElapsedS = time.Since(start).Seconds()
	progress.Written.Store(st.Written)
	if st.Outbound != nil {
		progress.WrittenOut.Store(st.Outbound.Written)
	}
	nic.finish(&st)
	if err != nil {
		return st, err
	}
	if writeErr != nil {
		return st, fmt.Errorf("write capture: %w", writeErr)
	}
	return st, nil
}

// LoadXDP loads the program an XDP capture of cfg attaches (the
// filter compiled into it, the same snaplen, ring and count-only setting),
// for a caller that attaches it itself: the bench's attach/detach windows.
func LoadXDP(cfg Config) (*loader.Capture, error) {
	raw, frameView, err := compileXDP(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	return loadXDP(cfg, raw, frameView)
}

// LoadIngress loads the program a capture of cfg takes received packets
// with on cfg.Iface, for a caller that attaches it itself (the bench's
// attach/detach windows): the XDP program, or where capture would take
// them at TC ingress instead (ingressFor), the TC ingress program
// (tc true), which goes on loader.AttachIngress.
func LoadIngress(cfg Config) (prog *ebpf.Program, tc bool, closer func(), err error) {
	raw, frameView, err := compileXDP(context.Background(), cfg)
	if err != nil {
		return nil, false, nil, err
	}
	if ingressFor(cfg.Iface, cfg.XDPMode, frameView, cfg.EgressHook) == ingressXDP {
		c, err := loadXDP(cfg, raw, frameView)
		if err != nil {
			return nil, false, nil, err
		}
		return c.Program(), false, func() { c.Close() }, nil
	}
	c, err := loader.LoadCaptureTC(egressConfig(cfg, raw), nil, true)
	if err != nil {
		return nil, false, nil, err
	}
	return c.Program(), true, func() { c.Close() }, nil
}

// ring is the ring's size and wakeup threshold (loader.CaptureConfig) for
// cfg: -B, at least 64 of the largest records, and --immediate-mode.
func (cfg Config) ring() (bytes, wakeup uint32) {
	bytes, wakeup = uint32(loader.RingBytes), uint32(loader.RingWakeupBytes)
	if cfg.RingBytes != 0 { // -B
		bytes, wakeup = cfg.RingBytes, cfg.RingBytes/4
	}
	// A record must fit the ring with room for others: a jumbo snaplen
	// gets a ring of at least 64 of its largest records.
	for uint64(bytes) < 64*uint64(min(cfg.Snaplen, loader.MaxSnaplen)) && bytes < 1<<30 {
		bytes <<= 1
	}
	if cfg.Immediate || cfg.ReadFile != "" {
		wakeup = 0
	}
	return bytes, wakeup
}

func loadXDP(cfg Config, raw []cbpf.RawInstruction, frameView bool) (*loader.Capture, error) {
	ring, wakeup := cfg.ring()
	lc := loader.CaptureConfig{Filter: raw, Snaplen: min(cfg.Snaplen, loader.MaxSnaplen), CountOnly: cfg.CountOnly,
		FrameView: frameView, RingBytes: ring, RingWakeupBytes: wakeup}
	if cfg.ReadFile == "" {
		xdpLoad(&lc, cfg.Iface, cfg.XDPMode)
	}
	return cfg.loadCapture(lc)
}

// captureXDP captures in cfg.Direction: the XDP program on what the
// interface receives, the TC egress program on what it sends, both
// writing to one ring (the XDP program's; the egress program's own when
// it runs alone), read by one consumer in arrival order.
func captureXDP(ctx context.Context, cfg Config, raw []cbpf.RawInstruction, frameView bool, progress *Progress, st *Stats, emit func(*Packet)) error {
	dir := cfg.Direction
	if dir == "" {
		dir = DirInOut
	}
	st.Direction = dir
	plan, choice, err := planRings(cfg.ringsMode(), cfg.interfaces())
	if err != nil {
		return err
	}
	st.Rings = &choice
	if plan.Rings() > 0 || len(cfg.MoreIfaces) > 0 {
		return captureMerged(ctx, cfg, raw, frameView, dir, plan, progress, st, emit)
	}
	var (
		in   *loader.Capture
		out  *loader.CaptureEgress
		ring *ebpf.Map
		att  *loader.Attachment
		eatt *loader.EgressAttachment
	)
	// Beside an XDP program already attached (someone else's, another
	// capture's or a scan's), which XDP attachment would refuse: received
	// packets are taken at TC ingress instead, after that program, which
	// tcx chains with any other. What it drops, redirects or sends back
	// never gets there (see capture --help).
	var inTC *loader.CaptureEgress
	var iatt *loader.EgressAttachment
	at := ingressFor(cfg.Iface, cfg.XDPMode, frameView, cfg.EgressHook)
	if dir.In() {
		if at == ingressBeside && frameView {
			cfg.notice(savefileAtTCNotice)
		}
		if at != ingressXDP {
			if inTC, err = loader.LoadCaptureTC(egressConfig(cfg, raw), nil, true); err != nil {
				return err
			}
			defer inTC.Close()
			ring = inTC.Events()
		} else {
			if in, err = loadXDP(cfg, raw, frameView); err != nil {
				return err
			}
			defer in.Close()
			ring = in.Events()
		}
	}
	if dir.Out() {
		if out, err = loader.LoadCaptureEgress(egressConfig(cfg, raw), ring); err != nil {
			return err
		}
		defer out.Close()
		ring = out.Events()
	}
	// Read before anything is attached: every packet the ring gets is
	// counted too, whenever it comes.
	var beforeIn, beforeOut, beforeInTC loader.Counters
	if in != nil {
		if beforeIn, err = in.Counters(); err != nil {
			return err
		}
	}
	if inTC != nil {
		if beforeInTC, err = inTC.Counters(); err != nil {
			return err
		}
	}
	if out != nil {
		if beforeOut, err = out.Counters(); err != nil {
			return err
		}
	}
	// Egress first: once XDP is attached (what `ip link` shows) both run.
	if out != nil {
		if eatt, err = loader.AttachEgress(out.Program(), cfg.Iface, cfg.EgressHook); err != nil {
			return err
		}
		defer eatt.Close()
		st.Outbound = &DirStats{Hook: string(eatt.Hook)}
	}
	var ahead *xdpAheadMeter
	var late *lateAhead
	defer func() { late.finish() }()
	if inTC != nil {
		if at == ingressBeside {
			ahead = aheadOf(cfg.Iface, progress)
		} else {
			late = watchLateAhead(cfg.Iface)
		}
		if iatt, err = loader.AttachIngress(inTC.Program(), cfg.Iface, cfg.EgressHook); err != nil {
			return at.attachError(cfg.Iface, err)
		}
		defer iatt.Close()
		st.Inbound = &DirStats{Hook: at.hook(iatt.Hook)}
	}
	if in != nil {
		if att, err = loader.Attach(in.Program(), cfg.Iface, cfg.XDPMode); err != nil {
			return err
		}
		defer att.Close()
		st.XDPMode = string(att.Mode)
		st.Inbound = &DirStats{Hook: "xdp " + string(att.Mode)}
		if msg := vlanStripNotice(cfg.Iface, att.Mode, in.VLANMeta); msg != "" {
			cfg.notice(msg)
		}
	}
	read := func() (loader.Counters, error) {
		var sum loader.Counters
		if in != nil {
			c, err := in.Counters()
			if err != nil {
				return sum, err
			}
			sum = sum.Add(c)
		}
		for _, p := range []*loader.CaptureEgress{inTC, out} {
			if p == nil {
				continue
			}
			c, err := p.Counters()
			if err != nil {
				return sum, err
			}
			sum = sum.Add(c)
		}
		return sum, nil
	}
	before := beforeIn.Add(beforeInTC).Add(beforeOut)
	// Since the capture began, as --stats-json counts.
	progress.SetCounters(func() (loader.Counters, error) {
		now, err := read()
		return now.Sub(before), err
	})
	since := func(read func() (loader.Counters, error), before loader.Counters) func() (loader.Counters, error) {
		return func() (loader.Counters, error) {
			now, err := read()
			return now.Sub(before), err
		}
	}
	switch {
	case in != nil:
		progress.dir[0] = since(in.Counters, beforeIn)
	case inTC != nil:
		progress.dir[0] = since(inTC.Counters, beforeInTC)
	}
	if out != nil {
		progress.dir[1] = since(out.Counters, beforeOut)
	}
	if in != nil {
		progress.SetProgram(in.Program())
	} else if inTC != nil {
		progress.SetProgram(inTC.Program())
	}
	var cons *ringbuf.Consumer[bpf.CaptureCaptureHdr]
	if !cfg.CountOnly {
		if cons, err = ringbuf.New[bpf.CaptureCaptureHdr](ring, ringbuf.Options{}); err != nil {
			return err
		}
		defer cons.Close()
	}
	if err := cfg.ready(); err != nil {
		return err
	}

	if cfg.CountOnly {
		<-ctx.Done()
	} else {
		clock := clock.NewMono()
		var p Packet // reused: no allocation per packet
		// Outbound checksums the device would finish (egresscsum.go).
		finish, csumBuf := false, make([]byte, 0, loader.MaxSnaplen)
		if out != nil {
			offload, err := txChecksumOffload(cfg.Iface)
			finish = err == nil && !offload
		}
		read, done := detachThenDrain(ctx, func() {
			att.Close()
			iatt.Close()
			eatt.Close()
		})
		err = cons.RunRecords(read, func(h *bpf.CaptureCaptureHdr, payload []byte) {
			n := min(int(h.CapLen), len(payload))
			data := payload[:n]
			if h.Dir == 1 && finish && n == int(h.OrigLen) {
				csumBuf = append(csumBuf[:0], data...) // the ring is read-only
				if finishChecksum(csumBuf, n) {
					data = csumBuf
				}
			}
			p = ringPacket(clock, h, data)
			emit(&p)
		})
		done()
		if err != nil {
			return err
		}
	}
	if late != nil {
		ahead = late.finish()
	}
	// Detach (if the reader has not) before the last reading, so the
	// figures are final.
	att.Close()
	iatt.Close()
	eatt.Close()
	ahead.finish(st)
	var sum loader.Counters
	if in != nil {
		after, err := in.Counters()
		if err != nil {
			return err
		}
		d := after.Sub(beforeIn)
		st.Inbound.add(d)
		st.Counters = d
		sum = sum.Add(d)
	}
	if inTC != nil {
		after, err := inTC.Counters()
		if err != nil {
			return err
		}
		d := after.Sub(beforeInTC)
		st.Inbound.add(d)
		st.Counters = d // counted by protocol there too
		sum = sum.Add(d)
	}
	if out != nil {
		after, err := out.Counters()
		if err != nil {
			return err
		}
		d := after.Sub(beforeOut)
		st.Outbound.add(d)
		sum = sum.Add(d)
	}
	st.Seen, st.Matched, st.RingLost = sum.Packets, sum.Matched, sum.RingLost
	if cfg.CountOnly {
		st.Bytes = sum.Bytes
	}
	return nil
}

func capturePcap(ctx context.Context, cfg Config, st *Stats, emit func(*Packet)) error {
	h, err := libpcap.Open(cfg.Iface, int(cfg.Snaplen), cfg.Filter)
	if err != nil {
		return err
	}
	defer h.Close()
	st.XDPMode = ""
	if cfg.Direction != "" && cfg.Direction != DirInOut {
		if err := h.SetDirection(map[Direction]pcap.Direction{DirIn: pcap.DirectionIn, DirOut: pcap.DirectionOut}[cfg.Direction]); err != nil {
			return fmt.Errorf("libpcap on %s: -Q %s: %w", cfg.Iface, cfg.Direction, err)
		}
	}
	if err := cfg.ready(); err != nil {
		return err
	}
	var drainUntil time.Time
	var p Packet
	for {
		if ctx.Err() != nil {
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(drainTimeout)
			} else if time.Now().After(drainUntil) {
				break
			}
		}
		data, ci, err := h.ZeroCopyReadPacketData()
		if errors.Is(err, pcap.NextErrorTimeoutExpired) {
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("libpcap read: %w", err)
		}
		st.Matched++
		if !cfg.CountOnly {
			p = Packet{TimeNs: ci.Timestamp.UnixNano(), CaptureLength: ci.CaptureLength, Length: ci.Length, Data: data}
			emit(&p)
		}
		if cfg.Count > 0 && st.Written >= cfg.Count {
			break
		}
	}
	if s, err := h.Stats(); err == nil {
		st.Seen = uint64(s.PacketsReceived)
		st.RingLost = uint64(s.PacketsDropped + s.PacketsIfDropped)
	}
	return nil
}

// ringPacket is the packet a capture program's ring record holds: data,
// its bytes, and the header the program wrote before them.
func ringPacket(c clock.Mono, h *bpf.CaptureCaptureHdr, data []byte) Packet {
	return Packet{TimeNs: c.WallNs(h.TsNs), CaptureLength: len(data), Length: int(h.OrigLen),
		FromXDP: true, RxQueue: h.RxQueue, CPU: h.Cpu, Outbound: h.Dir == 1, Data: data}
}

// ready calls cfg.Ready, if set, once the capture is set up.
func (cfg Config) ready() error {
	if cfg.Ready == nil {
		return nil
	}
	return cfg.Ready()
}
