package capture

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	ebpfringbuf "github.com/cilium/ebpf/ringbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/loader"
)

// LinearProgRunBytes is the longest frame BPF_PROG_RUN gives an XDP
// program in one piece: a page less the XDP headroom (256) and the room for
// skb_shared_info (320 on x86-64). Past it the kernel puts the rest in
// fragments, which the capture program (xdp.frags) reads whole. A kernel
// that refuses such a frame, and a frame shorter than an Ethernet header
// (which BPF_PROG_RUN refuses), go through libpcap's program in user space
// instead, counted in Stats.UserFiltered.
const LinearProgRunBytes = 4096 - 256 - 320

// packetSource is a pcap or pcapng reader.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// OpenOffline opens a pcap or pcapng file ("-": standard input) and says
// what it is: "pcap" or "pcapng", its link type (pcap) and snaplen.
func openOffline(path string) (src packetSource, linkType func(ci gopacket.CaptureInfo) layers.LinkType, desc string, closer io.Closer, err error) {
	var r io.Reader
	var c io.Closer = io.NopCloser(nil)
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, "", nil, fmt.Errorf("-r %s: %w", path, err)
		}
		r, c = f, f
	}
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		c.Close()
		return nil, nil, "", nil, fmt.Errorf("-r %s: not a pcap or pcapng file (%d bytes)", path, len(magic))
	}
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{})
		if err != nil {
			c.Close()
			return nil, nil, "", nil, fmt.Errorf("-r %s: %w", path, err)
		}
		lt := func(ci gopacket.CaptureInfo) layers.LinkType {
			intf, err := ng.Interface(ci.InterfaceIndex)
			if err != nil {
				return layers.LinkTypeNull
			}
			return intf.LinkType
		}
		return ng, lt, fmt.Sprintf("pcapng, link-type %s", linkTypeName(ng.LinkType())), c, nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		c.Close()
		return nil, nil, "", nil, fmt.Errorf("-r %s: not a pcap or pcapng file: %w", path, err)
	}
	lt := pr.LinkType()
	return pr, func(gopacket.CaptureInfo) layers.LinkType { return lt },
		fmt.Sprintf("link-type %s, snapshot length %d", linkTypeName(lt), pr.Snaplen()), c, nil
}

func linkTypeName(lt layers.LinkType) string {
	if lt == layers.LinkTypeEthernet {
		return "EN10MB (Ethernet)"
	}
	return fmt.Sprintf("%s (%d)", lt, int(lt))
}

// captureOffline runs every packet of cfg.ReadFile through the capture
// program with BPF_PROG_RUN: the same translated filter, the same snaplen
// and the same record a live capture's ring receives.
func captureOffline(ctx context.Context, cfg Config, raw []cbpf.RawInstruction, frameView bool, st *Stats, emit func(*Packet)) error {
	src, linkType, desc, closer, err := openOffline(cfg.ReadFile)
	if err != nil {
		return err
	}
	defer closer.Close()
	c, err := loadXDP(cfg, raw, frameView)
	if err != nil {
		return err
	}
	defer c.Close()
	var rd *ebpfringbuf.Reader
	if !cfg.CountOnly {
		if rd, err = ebpfringbuf.NewReader(c.Events()); err != nil {
			return fmt.Errorf("open the capture ring: %w", err)
		}
		defer rd.Close()
	}
	// libpcap's own program, for frames BPF_PROG_RUN cannot take whole.
	vm, vmErr := classicVM(raw)
	// cilium/ebpf checks BPF_PROG_RUN works by loading a program of its
	// own on the first Run: do it now, while the capabilities last (Ready
	// drops them), on a frame whose record, if the filter takes it, is
	// read away before counting starts.
	if _, err := c.Program().Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		return fmt.Errorf("BPF_PROG_RUN of the capture program: %w", err)
	}
	if rd != nil {
		var r ebpfringbuf.Record
		for {
			rd.SetDeadline(time.Now())
			if rd.ReadInto(&r) != nil {
				break
			}
		}
	}
	st.XDPMode = "offline"
	st.ReadFrom = desc
	if cfg.Reading != nil {
		cfg.Reading(desc)
	}
	if err := cfg.ready(); err != nil {
		return err
	}
	before, err := c.Counters()
	if err != nil {
		return err
	}
	var rec ebpfringbuf.Record
	var p Packet
	hdrSize := int(unsafe.Sizeof(bpf.CaptureCaptureHdr{}))
	snap := int(min(cfg.Snaplen, loader.MaxSnaplen))
	var userMatched uint64
	for n := uint64(1); ctx.Err() == nil; n++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				st.Truncated = true // a file still being written, or cut: what was read counts
			}
			break
		}
		if err != nil {
			return fmt.Errorf("-r %s: packet %d: %w", cfg.ReadFile, n, err)
		}
		if lt := linkType(ci); lt != layers.LinkTypeEthernet {
			return fmt.Errorf("-r %s: packet %d: link type %s: only Ethernet (EN10MB) frames can go through the XDP program", cfg.ReadFile, n, linkTypeName(lt))
		}
		st.Seen++
		var runErr error
		if len(data) >= 14 {
			_, runErr = c.Program().Run(&ebpf.RunOptions{Data: data})
			if runErr != nil && len(data) <= LinearProgRunBytes {
				return fmt.Errorf("-r %s: packet %d: BPF_PROG_RUN: %w", cfg.ReadFile, n, runErr)
			}
		}
		if len(data) < 14 || runErr != nil {
			if vmErr != nil {
				return fmt.Errorf("-r %s: packet %d is %d bytes: BPF_PROG_RUN does not take it (%v), and libpcap's program cannot run here: %w",
					cfg.ReadFile, n, len(data), runErr, vmErr)
			}
			st.UserFiltered++
			keep, err := vm.Run(data)
			if err != nil || keep == 0 {
				continue
			}
			userMatched++
			if cfg.CountOnly {
				continue
			}
			keep = min(keep, len(data), snap)
			p = Packet{TimeNs: ci.Timestamp.UnixNano(), CaptureLength: keep, Length: ci.Length, Data: data[:keep]}
			emit(&p)
			continue
		}
		if rd == nil {
			continue
		}
		rd.SetDeadline(time.Now())
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // not a match (or the ring was full: counted as ring lost)
			}
			return fmt.Errorf("read the capture ring: %w", err)
		}
		if len(rec.RawSample) < hdrSize {
			continue
		}
		h := (*bpf.CaptureCaptureHdr)(unsafe.Pointer(&rec.RawSample[0]))
		payload := rec.RawSample[hdrSize:]
		k := min(int(h.CapLen), len(payload))
		// The file's wire length: a frame the file kept cut is still
		// that long on the wire.
		p = Packet{TimeNs: ci.Timestamp.UnixNano(), CaptureLength: k, Length: max(ci.Length, int(h.OrigLen)), Data: payload[:k]}
		emit(&p)
	}
	after, err := c.Counters()
	if err != nil {
		return err
	}
	d := after.Sub(before)
	st.Counters = d
	st.Matched, st.RingLost = d.Matched+userMatched, d.RingLost
	if cfg.CountOnly {
		st.Bytes = d.Bytes
	}
	return nil
}

// classicVM is libpcap's program in x/net/bpf's interpreter.
func classicVM(raw []cbpf.RawInstruction) (*cbpf.VM, error) {
	insns, ok := cbpf.Disassemble(raw)
	if !ok {
		return nil, errors.New("the filter uses classic BPF extensions the user-space interpreter lacks")
	}
	return cbpf.NewVM(insns)
}

// CheckOfflineFile says whether path is a pcap or pcapng file of Ethernet
// frames -r can read, before anything is set up (a bad file is bad input).
func CheckOfflineFile(path string) error {
	_, _, _, c, err := openOffline(path)
	if err != nil {
		return err
	}
	return c.Close()
}
