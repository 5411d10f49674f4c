package capture

import (
	"context"
	"fmt"
	"net"

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
	XDPMode  string `json:"xdp_mode"`
}

// interfaces are the capture's interfaces, the file's interface order.
func (c Config) interfaces() []string { return append([]string{c.Iface}, c.MoreIfaces...) }

func (c Config) ringsMode() RingsMode {
	if c.Rings == "" {
		return RingsAuto
	}
	return c.Rings
}

// captureMerged captures on every interface with one program each, all
// writing into the same rings (the shared one and one per receiving CPU of
// plan), and writes the rings' records merged in timestamp order
// (internal/reorder).
func captureMerged(ctx context.Context, cfg Config, raw []cbpf.RawInstruction, frameView bool, plan loader.RingPlan, progress *Progress, st *Stats, emit func(*Packet)) error {
	ifaces := cfg.interfaces()
	progs := make([]*loader.Capture, 0, len(ifaces))
	defer func() {
		for i := len(progs) - 1; i >= 0; i-- {
			progs[i].Close()
		}
	}()
	fileIndex := map[uint32]int{}
	st.Interfaces = make([]InterfaceStats, len(ifaces))
	for i, name := range ifaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", name, err)
		}
		if _, dup := fileIndex[uint32(ifc.Index)]; dup {
			return fmt.Errorf("interface %s named twice: capture each interface once", name)
		}
		fileIndex[uint32(ifc.Index)] = i
		st.Interfaces[i] = InterfaceStats{Name: name, Ifindex: ifc.Index}
		ring := uint32(loader.RingBytes)
		// As loadXDP: room for at least 64 of the largest records.
		for uint64(ring) < 64*uint64(min(cfg.Snaplen, loader.MaxSnaplen)) && ring < 1<<30 {
			ring <<= 1
		}
		lc := loader.CaptureConfig{Filter: raw, Snaplen: min(cfg.Snaplen, loader.MaxSnaplen), CountOnly: cfg.CountOnly,
			FrameView: frameView, RingBytes: ring, RingWakeupBytes: loader.RingWakeupBytes, Rings: plan}
		if plan.Rings() > 0 {
			for uint64(lc.Rings.Bytes) < 64*uint64(lc.Snaplen) && lc.Rings.Bytes < 1<<30 {
				lc.Rings.Bytes <<= 1
			}
			lc.RingWakeupBytes = lc.Rings.Bytes / 4
			if st.Rings != nil {
				st.Rings.RingBytes = lc.Rings.Bytes
			}
		}
		if i > 0 {
			lc.ShareRings = progs[0]
		}
		c, err := loader.LoadCapture(lc)
		if err != nil {
			return err
		}
		progs = append(progs, c)
	}
	sum := func() (loader.Counters, error) {
		var t loader.Counters
		for _, c := range progs {
			n, err := c.Counters()
			if err != nil {
				return t, err
			}
			t = addCounters(t, n)
		}
		return t, nil
	}
	before := make([]loader.Counters, len(progs))
	for i, c := range progs {
		var err error
		if before[i], err = c.Counters(); err != nil {
			return err
		}
	}
	var atts []*loader.Attachment
	defer func() {
		for _, a := range atts {
			a.Close()
		}
	}()
	for i, c := range progs {
		att, err := loader.Attach(c.Program(), ifaces[i], cfg.XDPMode)
		if err != nil {
			return err
		}
		atts = append(atts, att)
		st.Interfaces[i].XDPMode = string(att.Mode)
	}
	st.XDPMode = string(atts[0].Mode)
	progress.SetCounters(sum)

	var multi *ringbuf.Multi[bpf.CaptureCaptureHdr]
	if !cfg.CountOnly {
		var err error
		if multi, err = ringbuf.NewMulti[bpf.CaptureCaptureHdr](progs[0].Rings(), ringbuf.Options{}); err != nil {
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
		// Records come in runs from one interface: a map lookup per
		// record only when it changes.
		lastIfindex, lastIndex := uint32(0), 0
		if len(ifaces) == 1 {
			for k, v := range fileIndex {
				lastIfindex, lastIndex = k, v
			}
		}
		ms, err := mergeRings(ctx, multi, 0, func(h *bpf.CaptureCaptureHdr, payload []byte) {
			n := min(int(h.CapLen), len(payload))
			p = ringPacket(mono, h, payload[:n])
			if h.Ifindex != lastIfindex {
				lastIfindex, lastIndex = h.Ifindex, fileIndex[h.Ifindex]
			}
			p.InterfaceIndex = lastIndex
			before := st.Written
			emit(&p)
			if st.Written != before {
				st.Interfaces[p.InterfaceIndex].Written++
			}
		})
		if st.Rings != nil {
			st.Rings.WindowNs = reorder.DefaultWindow
			st.Rings.Late, st.Rings.MaxLateNs, st.Rings.MaxHeld = ms.Late, ms.MaxLateNs, ms.MaxHeld
			st.Rings.RecordsPerRing = multi.Records()
		}
		if err != nil {
			return err
		}
	}
	// Detach before the last reading, so the figures are final.
	for _, a := range atts {
		a.Close()
	}
	var total loader.Counters
	for i, c := range progs {
		after, err := c.Counters()
		if err != nil {
			return err
		}
		d := after.Sub(before[i])
		total = addCounters(total, d)
		is := &st.Interfaces[i]
		is.Seen, is.Matched, is.RingLost = d.Packets, d.Matched, d.RingLost
		if st.Rings != nil {
			lost, err := c.RingLostPerCPU()
			if err != nil {
				return err
			}
			if st.Rings.RingLostPerCPU == nil {
				st.Rings.RingLostPerCPU = make([]uint64, len(lost))
			}
			for cpu, n := range lost {
				st.Rings.RingLostPerCPU[cpu] += n
			}
		}
	}
	st.Counters = total
	st.Seen, st.Matched, st.RingLost = total.Packets, total.Matched, total.RingLost
	if cfg.CountOnly {
		st.Bytes = total.Bytes
	}
	return nil
}

// mergeRings reads the rings of multi until ctx is done and they are
// drained, handing each record to onRecord in timestamp order within the
// window (0: reorder.DefaultWindow); a record later than the window comes
// out of order and is counted in the stats' Late.
func mergeRings(ctx context.Context, multi *ringbuf.Multi[bpf.CaptureCaptureHdr], windowNs int64, onRecord func(h *bpf.CaptureCaptureHdr, payload []byte)) (reorder.Stats, error) {
	return multi.RunMerged(ctx, windowNs, func(h *bpf.CaptureCaptureHdr) int64 { return int64(h.TsNs) },
		func(_ int, h *bpf.CaptureCaptureHdr, payload []byte) { onRecord(h, payload) })
}

// addCounters adds b to a, field by field.
func addCounters(a, b loader.Counters) loader.Counters {
	var zero loader.Counters
	return a.Sub(zero.Sub(b))
}
