package capture

import (
	"context"
	"fmt"
	"net"
	"strings"

	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/internal/reorder"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/ringbuf"
)

// InterfaceStats are one interface's figures in a capture of several
// (--stats-json "interfaces", and the pcapng statistics blocks).
type InterfaceStats struct {
	Name     string `json:"name"`
	Ifindex  int    `json:"ifindex"`
	Seen     uint64 `json:"seen"`
	Matched  uint64 `json:"matched"`
	Written  uint64 `json:"written"`
	RingLost uint64 `json:"ring_lost"`
	// XDPMode is the XDP program's mode (native, generic), "" where
	// received packets are taken at TC ingress.
	XDPMode string `json:"xdp_mode"`
	// Hook is where received packets were taken: "xdp native", "xdp
	// generic", or the TC ingress hook and why.
	Hook string `json:"hook"`
	// XDPAhead: what an XDP program attached before the capture did there.
	XDPAhead *XDPAhead `json:"xdp_ahead,omitempty"`
}

// interfaces are the capture's interfaces, the file's interface order.
func (c Config) interfaces() []string { return append([]string{c.Iface}, c.MoreIfaces...) }

func (c Config) ringsMode() loader.RingsMode {
	if c.Rings == "" {
		return loader.RingsAuto
	}
	return c.Rings
}

// ifaceCapture is one interface's programs in a merged capture: the XDP
// program (loaded on every interface: the first one's owns the rings the
// others write into; attached when received packets are taken at XDP),
// or the TC ingress program (beside an XDP program already attached, or
// for frames that are skbs already: ingressAt); and the TC egress program
// for sent packets.
type ifaceCapture struct {
	name      string
	at        ingressAt
	xdp       *loader.Capture
	inTC, out *loader.CaptureEgress
	att       *loader.Attachment
	iatt      *loader.EgressAttachment
	eatt      *loader.EgressAttachment
	// Counters before anything was attached: received (XDP or TC
	// ingress) and sent.
	beforeIn, beforeOut loader.Counters
	// finish: sent packets' checksums the device would finish
	// (egresscsum.go).
	finish bool
	// ahead: the verdicts of the XDP program before inTC (xdpahead.go);
	// late: the watch for one attached after the capture began.
	ahead *xdpAheadMeter
	late  *lateAhead
}

// in is the program that takes received packets, if any.
func (c *ifaceCapture) in() interface {
	Counters() (loader.Counters, error)
} {
	switch {
	case c.inTC != nil:
		return c.inTC
	case c.att != nil:
		return c.xdp
	}
	return nil
}

func (c *ifaceCapture) detach() {
	c.att.Close()
	c.iatt.Close()
	c.eatt.Close()
}

func (c *ifaceCapture) close() {
	c.late.finish()
	c.detach()
	for _, p := range []*loader.CaptureEgress{c.inTC, c.out} {
		if p != nil {
			p.Close()
		}
	}
	if c.xdp != nil {
		c.xdp.Close()
	}
}

// captureMerged captures on every interface, in the directions asked,
// with all programs writing into the same rings (the shared one and one
// per receiving CPU of plan), and writes the rings' records merged in
// timestamp order (internal/reorder).
func captureMerged(ctx context.Context, cfg Config, raw []cbpf.RawInstruction, frameView bool, dir Direction, plan loader.RingPlan, progress *Progress, st *Stats, emit func(*Packet)) error {
	names := cfg.interfaces()
	ifaces := make([]*ifaceCapture, 0, len(names))
	defer func() {
		// The ring owner (the first) last.
		for i := len(ifaces) - 1; i >= 0; i-- {
			ifaces[i].close()
		}
	}()
	fileIndex := map[uint32]int{}
	st.Interfaces = make([]InterfaceStats, len(names))
	for i, name := range names {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", name, err)
		}
		if _, dup := fileIndex[uint32(ifc.Index)]; dup {
			return fmt.Errorf("interface %s named twice: capture each interface once", name)
		}
		fileIndex[uint32(ifc.Index)] = i
		st.Interfaces[i] = InterfaceStats{Name: name, Ifindex: ifc.Index}
		// As loadXDP: -B, --immediate-mode, room for 64 of the largest
		// records.
		ring, wakeup := cfg.ring()
		lc := loader.CaptureConfig{Filter: raw, Snaplen: min(cfg.Snaplen, loader.MaxSnaplen), CountOnly: cfg.CountOnly,
			FrameView: frameView, RingBytes: ring, RingWakeupBytes: wakeup, Rings: plan}
		if dir.In() {
			xdpLoad(&lc, name, cfg.XDPMode)
		}
		if plan.Rings() > 0 {
			for uint64(lc.Rings.Bytes) < 64*uint64(lc.Snaplen) && lc.Rings.Bytes < 1<<30 {
				lc.Rings.Bytes <<= 1
			}
			if wakeup != 0 {
				lc.RingWakeupBytes = lc.Rings.Bytes / 4
			}
			if st.Rings != nil {
				st.Rings.RingBytes = lc.Rings.Bytes
			}
		}
		if i > 0 {
			lc.ShareRings = ifaces[0].xdp
		}
		c := &ifaceCapture{name: name}
		if c.xdp, err = cfg.loadCapture(lc); err != nil {
			return err
		}
		ifaces = append(ifaces, c)
		// The TC programs write into the rings of the group's owner.
		tc := egressConfig(cfg, raw)
		// A replacement ring must have the size of the owner's.
		tc.Rings, tc.ShareRings, tc.RingWakeupBytes = plan, ifaces[0].xdp, lc.RingWakeupBytes
		tc.RingBytes, tc.Rings.Bytes = lc.RingBytes, lc.Rings.Bytes
		if dir.In() {
			// TC ingress beside an XDP program already attached, or for
			// frames that are skbs already, as captureXDP does.
			if c.at = ingressFor(name, cfg.XDPMode, frameView, cfg.EgressHook); c.at == ingressBeside && frameView {
				cfg.notice(savefileAtTCNotice)
			}
			if c.at != ingressXDP {
				if c.inTC, err = loader.LoadCaptureTC(tc, nil, true); err != nil {
					return err
				}
			}
		}
		if dir.Out() {
			if c.out, err = loader.LoadCaptureTC(tc, nil, false); err != nil {
				return err
			}
			offload, err := txChecksumOffload(name)
			c.finish = err == nil && !offload
		}
	}
	// Read before anything is attached: every packet the rings get is
	// counted too, whenever it comes.
	for _, c := range ifaces {
		var err error
		if c.inTC != nil {
			c.beforeIn, err = c.inTC.Counters()
		} else {
			c.beforeIn, err = c.xdp.Counters()
		}
		if err != nil {
			return err
		}
		if c.out != nil {
			if c.beforeOut, err = c.out.Counters(); err != nil {
				return err
			}
		}
	}
	for i, c := range ifaces {
		var err error
		// Egress first: once XDP is attached (what `ip link` shows) both
		// run.
		if c.out != nil {
			if c.eatt, err = loader.AttachEgress(c.out.Program(), c.name, cfg.EgressHook); err != nil {
				return err
			}
			if st.Outbound == nil {
				st.Outbound = &DirStats{Hook: string(c.eatt.Hook)}
			}
		}
		switch {
		case c.inTC != nil:
			if c.at == ingressBeside {
				c.ahead = aheadOf(c.name, progress)
			} else {
				c.late = watchLateAhead(c.name)
			}
			if c.iatt, err = loader.AttachIngress(c.inTC.Program(), c.name, cfg.EgressHook); err != nil {
				return c.at.attachError(c.name, err)
			}
			st.Interfaces[i].Hook = c.at.hook(c.iatt.Hook)
		case dir.In():
			if c.att, err = loader.Attach(c.xdp.Program(), c.name, cfg.XDPMode); err != nil {
				return err
			}
			st.Interfaces[i].XDPMode = string(c.att.Mode)
			st.Interfaces[i].Hook = "xdp " + string(c.att.Mode)
			if msg := vlanStripNotice(c.name, c.att.Mode, c.xdp.VLANMeta); msg != "" {
				cfg.notice(msg)
			}
		}
	}
	if dir.In() {
		// One hook for all, or each interface's where they differ
		// (auto mode chooses per interface).
		hooks := make([]string, len(ifaces))
		for i := range ifaces {
			hooks[i] = st.Interfaces[i].Hook
		}
		st.Inbound = &DirStats{Hook: hooks[0]}
		for i := range hooks {
			if hooks[i] != hooks[0] {
				per := make([]string, len(hooks))
				for j, h := range hooks {
					per[j] = ifaces[j].name + ": " + h
				}
				st.Inbound.Hook = strings.Join(per, "; ")
				break
			}
		}
	}
	if c := ifaces[0]; c.att != nil {
		st.XDPMode = string(c.att.Mode)
	}
	// Since the capture began, as --stats-json counts: each direction,
	// and both.
	sinceIn := func() (loader.Counters, error) { return sumSince(ifaces, true) }
	sinceOut := func() (loader.Counters, error) { return sumSince(ifaces, false) }
	progress.SetCounters(func() (loader.Counters, error) {
		in, err := sinceIn()
		if err != nil {
			return in, err
		}
		out, err := sinceOut()
		return in.Add(out), err
	})
	if dir.In() {
		progress.dir[0] = sinceIn
	}
	if dir.Out() {
		progress.dir[1] = sinceOut
	}
	if c := ifaces[0]; c.inTC != nil {
		progress.SetProgram(c.inTC.Program())
	} else {
		progress.SetProgram(c.xdp.Program())
	}

	var multi *ringbuf.Multi[bpf.CaptureCaptureHdr]
	if !cfg.CountOnly {
		var err error
		if multi, err = ringbuf.NewMulti[bpf.CaptureCaptureHdr](ifaces[0].xdp.Rings(), ringbuf.Options{}); err != nil {
			return err
		}
		defer multi.Close()
	}
	if err := cfg.ready(); err != nil {
		return err
	}
	if cfg.CountOnly {
		<-ctx.Done()
	} else {
		mono := clock.NewMono()
		var p Packet
		csumBuf := make([]byte, 0, loader.MaxSnaplen)
		// Records come in runs from one interface: a map lookup per
		// record only when the interface changes.
		lastIfindex, lastIndex := uint32(0), -1
		read, done := detachThenDrain(ctx, func() {
			for _, c := range ifaces {
				c.detach()
			}
		})
		ms, err := mergeRings(read, multi, 0, func(h *bpf.CaptureCaptureHdr, payload []byte) {
			n := min(int(h.CapLen), len(payload))
			data := payload[:n]
			if h.Ifindex != lastIfindex || lastIndex < 0 {
				lastIfindex, lastIndex = h.Ifindex, fileIndex[h.Ifindex]
			}
			i := lastIndex
			if h.Dir == 1 && ifaces[i].finish && n == int(h.OrigLen) {
				csumBuf = append(csumBuf[:0], data...) // the ring is read-only
				if finishChecksum(csumBuf, n) {
					data = csumBuf
				}
			}
			p = ringPacket(mono, h, data)
			p.InterfaceIndex = i
			before := st.Written
			emit(&p)
			if st.Written != before {
				st.Interfaces[i].Written++
			}
		})
		done()
		if st.Rings != nil {
			st.Rings.WindowNs = reorder.DefaultWindow
			st.Rings.Late, st.Rings.MaxLateNs, st.Rings.MaxHeld = ms.Late, ms.MaxLateNs, ms.MaxHeld
			st.Rings.RecordsPerRing = multi.Records()
		}
		if err != nil {
			return err
		}
	}
	// Detach (if the reader has not) before the last reading, so the
	// figures are final.
	for _, c := range ifaces {
		if c.late != nil {
			c.ahead = c.late.finish()
		}
		c.detach()
	}
	for i, c := range ifaces {
		if c.ahead != nil {
			a := c.ahead.read()
			st.Interfaces[i].XDPAhead = &a
			st.Loss.XDPAhead = append(st.Loss.XDPAhead, a)
		}
	}
	var total, in, out loader.Counters
	for i, c := range ifaces {
		din, err := c.since(true)
		if err != nil {
			return err
		}
		dout, err := c.since(false)
		if err != nil {
			return err
		}
		in, out = in.Add(din), out.Add(dout)
		d := din.Add(dout)
		total = total.Add(d)
		is := &st.Interfaces[i]
		is.Seen, is.Matched, is.RingLost = d.Packets, d.Matched, d.RingLost
		if st.Rings != nil {
			if err := c.addRingLost(st.Rings); err != nil {
				return err
			}
		}
	}
	if st.Inbound != nil {
		st.Inbound.add(in)
	}
	if st.Outbound != nil {
		st.Outbound.add(out)
	}
	st.Counters = total
	st.Seen, st.Matched, st.RingLost = total.Packets, total.Matched, total.RingLost
	if cfg.CountOnly {
		st.Bytes = total.Bytes
	}
	return nil
}

// since is what c's programs counted since the capture began, received
// (in) or sent.
func (c *ifaceCapture) since(in bool) (loader.Counters, error) {
	if !in {
		if c.out == nil {
			return loader.Counters{}, nil
		}
		now, err := c.out.Counters()
		return now.Sub(c.beforeOut), err
	}
	p := c.in()
	if p == nil {
		return loader.Counters{}, nil
	}
	now, err := p.Counters()
	return now.Sub(c.beforeIn), err
}

// addRingLost adds what c's programs could not reserve, CPU by CPU.
func (c *ifaceCapture) addRingLost(r *RingChoice) error {
	counts := []func() ([]uint64, error){c.xdp.RingLostPerCPU}
	for _, p := range []*loader.CaptureEgress{c.inTC, c.out} {
		if p != nil {
			counts = append(counts, p.RingLostPerCPU)
		}
	}
	for _, count := range counts {
		lost, err := count()
		if err != nil {
			return err
		}
		if r.RingLostPerCPU == nil {
			r.RingLostPerCPU = make([]uint64, len(lost))
		}
		for cpu, n := range lost {
			r.RingLostPerCPU[cpu] += n
		}
	}
	return nil
}

// sumSince adds since(in) over the interfaces.
func sumSince(ifaces []*ifaceCapture, in bool) (loader.Counters, error) {
	var sum loader.Counters
	for _, c := range ifaces {
		d, err := c.since(in)
		if err != nil {
			return sum, err
		}
		sum = sum.Add(d)
	}
	return sum, nil
}

// mergeRings reads the rings of multi until ctx is done and they are
// drained, handing each record to onRecord in timestamp order within the
// window (0: reorder.DefaultWindow); a record later than the window comes
// out of order and is counted in the stats' Late.
func mergeRings(ctx context.Context, multi *ringbuf.Multi[bpf.CaptureCaptureHdr], windowNs int64, onRecord func(h *bpf.CaptureCaptureHdr, payload []byte)) (reorder.Stats, error) {
	return multi.RunMerged(ctx, windowNs, func(h *bpf.CaptureCaptureHdr) int64 { return int64(h.TsNs) },
		func(_ int, h *bpf.CaptureCaptureHdr, payload []byte) { onRecord(h, payload) })
}
