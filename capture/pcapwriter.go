package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/xdpscan/xdpscan/loader"
)

// PacketWriter writes captured packets to a pcapng or pcap file that
// Wireshark, tshark and gopacket read, buffered and without allocation per
// packet.
//
// pcapgo writes the file header, or for pcapng the section and interface
// blocks and the closing statistics; the packet records are written here,
// each in one piece (pcapgo writes a record in several calls, and for
// pcapng would allocate for the options every packet carries: the inbound
// direction (epb_flags), the RX queue (epb_queue) and, as a comment, the
// CPU that ran the XDP program).
type PacketWriter struct {
	buf   *bufio.Writer
	ng    *pcapgo.NgWriter // nil: pcap
	nano  bool             // pcap: nanosecond timestamps
	start time.Time
	// StatsComment is the statistics block's comment (pcapng): the loss
	// per stage, which isb_ifdrop alone cannot say.
	StatsComment string
}

// PacketFileOptions describe the file.
type PacketFileOptions struct {
	Format    string // "pcapng" or "pcap"
	Nano      bool   // pcap only: nanosecond timestamps (pcapng always has them)
	Interface string
	Ifindex   int           // the kernel's, recorded in the interface description
	RxMode    loader.RxMode // who captured, in the description
	Filter    string
	Snaplen   uint32
	OS        string
	// More are further interfaces (pcapng only): one interface
	// description block each, numbered from 1 in this order.
	More []MoreInterface
}

// MoreInterface is a further interface of a capture on several.
type MoreInterface struct {
	Name    string
	Ifindex int
}

// NewPacketWriter writes the file header (and for pcapng, the interface
// description) to w.
func NewPacketWriter(w io.Writer, o PacketFileOptions) (*PacketWriter, error) {
	pw := &PacketWriter{buf: bufio.NewWriterSize(w, 64<<10), start: time.Now()}
	switch o.Format {
	case "pcapng":
		desc := "xdpscan XDP capture"
		if o.RxMode == loader.RxPcap {
			desc = "xdpscan libpcap capture"
		}
		if o.Ifindex > 0 {
			desc += ", ifindex " + strconv.Itoa(o.Ifindex)
		}
		filter, comment := ngFilterOption(o.Filter)
		ng, err := pcapgo.NewNgWriterInterface(pw.buf, pcapgo.NgInterface{
			Name: o.Interface, Description: desc, Filter: filter, Comment: comment, OS: o.OS,
			LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, SnapLength: o.Snaplen,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "xdpscan"}})
		for _, m := range o.More {
			if err != nil {
				break
			}
			_, err = ng.AddInterface(ngMoreInterface(o, m))
		}
		if err == nil {
			err = ng.Flush() // its blocks go before the packets written here
		}
		if err != nil {
			return nil, fmt.Errorf("write pcapng header: %w", err)
		}
		pw.ng = ng
	case "pcap":
		if len(o.More) > 0 {
			return nil, fmt.Errorf("a pcap file has one interface: write pcapng to capture on %d", 1+len(o.More))
		}
		w := pcapgo.NewWriter(pw.buf)
		if o.Nano {
			w = pcapgo.NewWriterNanos(pw.buf)
		}
		pw.nano = o.Nano
		if err := w.WriteFileHeader(o.Snaplen, layers.LinkTypeEthernet); err != nil {
			return nil, fmt.Errorf("write pcap header: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown capture file format %q: pcapng or pcap", o.Format)
	}
	return pw, nil
}

// pcapng option codes (draft-ietf-opsawg-pcapng).
const (
	optComment  = 1
	optEpbFlags = 2
	optEpbQueue = 6
	blockEPB    = 6
	epbInbound  = 1 // epb_flags bits 0-1: direction
	epbOutbound = 2
)

// Write writes one packet: its whole record is built in the buffer's free
// space and written at once (one copy of the data, no allocation).
func (pw *PacketWriter) Write(p *Packet) error {
	// The longest record: a pcapng block's header, data, padding, options
	// (at most 48 bytes) and trailer.
	need := 28 + len(p.Data) + 3 + 48 + 4
	if pw.buf.Available() < need {
		if err := pw.buf.Flush(); err != nil {
			return err
		}
	}
	b := pw.buf.AvailableBuffer()
	if cap(b) < need {
		// A record longer than the buffer: bufio writes it through.
		_, err := pw.buf.Write(pw.appendRecord(make([]byte, 0, need), p))
		return err
	}
	_, err := pw.buf.Write(pw.appendRecord(b, p))
	return err
}

// appendRecord appends p's record, in the file's format, to b.
func (pw *PacketWriter) appendRecord(b []byte, p *Packet) []byte {
	le := binary.LittleEndian
	if pw.ng == nil { // pcap: a 16-byte header, then the data
		sec, frac := p.TimeNs/1e9, p.TimeNs%1e9
		if !pw.nano {
			frac /= 1e3
		}
		b = le.AppendUint32(b, uint32(sec))
		b = le.AppendUint32(b, uint32(frac))
		b = le.AppendUint32(b, uint32(p.CaptureLength))
		b = le.AppendUint32(b, uint32(p.Length))
		return append(b, p.Data...)
	}
	// pcapng enhanced packet block; its total length is patched in at the
	// end, once the options are written.
	start := len(b)
	ts := uint64(p.TimeNs)
	b = le.AppendUint32(b, blockEPB)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, uint32(p.InterfaceIndex))
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(p.CaptureLength))
	b = le.AppendUint32(b, uint32(p.Length))
	b = append(b, p.Data...)
	b = append(b, zeroPad[:pad4(len(p.Data))]...)
	b = appendOption32(b, optEpbFlags, epbDirection(p))
	if p.FromXDP {
		b = appendOption32(b, optEpbQueue, p.RxQueue)
		n := len(b)
		b = le.AppendUint16(b, optComment)
		b = le.AppendUint16(b, 0)
		b = append(b, "cpu "...)
		b = strconv.AppendUint(b, uint64(p.CPU), 10)
		le.PutUint16(b[n+2:], uint16(len(b)-n-4))
		b = append(b, zeroPad[:pad4(len(b)-n)]...)
	}
	b = append(b, 0, 0, 0, 0) // opt_endofopt
	total := uint32(len(b) - start + 4)
	le.PutUint32(b[start+4:], total)
	return le.AppendUint32(b, total)
}

func epbDirection(p *Packet) uint32 {
	if p.Outbound {
		return epbOutbound
	}
	return epbInbound
}

func appendOption32(b []byte, code uint16, v uint32) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, 4)
	return binary.LittleEndian.AppendUint32(b, v)
}

func pad4(n int) int { return (4 - n&3) & 3 }

var zeroPad [4]byte

// Close ends the file: pcapng gets an interface statistics block with what
// the capture received and dropped. The file is valid after Close.
func (pw *PacketWriter) Close(received, dropped uint64) error {
	if pw.ng != nil && pw.StatsComment != "" {
		// By hand: pcapgo writes no comment in a statistics block.
		if _, err := pw.buf.Write(appendISB(nil, 0, pw.start, time.Now(), received, dropped, pw.StatsComment)); err != nil {
			return fmt.Errorf("write pcapng statistics: %w", err)
		}
	} else if pw.ng != nil {
		now := time.Now()
		if err := pw.ng.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{LastUpdate: now, StartTime: pw.start,
			EndTime: now, PacketsReceived: received, PacketsDropped: dropped, Comment: pw.StatsComment}); err != nil {
			return fmt.Errorf("write pcapng statistics: %w", err)
		}
		if err := pw.ng.Flush(); err != nil {
			return err
		}
	}
	return pw.buf.Flush()
}

// ngMoreInterface describes a further interface as the first is.
func ngMoreInterface(o PacketFileOptions, m MoreInterface) pcapgo.NgInterface {
	desc := "xdpscan XDP capture"
	if m.Ifindex > 0 {
		desc += ", ifindex " + strconv.Itoa(m.Ifindex)
	}
	filter, comment := ngFilterOption(o.Filter)
	return pcapgo.NgInterface{Name: m.Name, Description: desc, Filter: filter, Comment: comment, OS: o.OS,
		LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, SnapLength: o.Snaplen}
}

// CloseInterfaces is Close for a capture on several interfaces: one
// statistics block per interface, in the file's interface order; the
// first's comment is StatsComment, another's what the XDP program ahead
// of the capture there did.
func (pw *PacketWriter) CloseInterfaces(stats []InterfaceStats) error {
	if pw.ng != nil {
		if err := pw.ng.Flush(); err != nil { // by hand from here: pcapgo writes no comment in a statistics block
			return err
		}
		now := time.Now()
		for i, s := range stats {
			comment := ""
			if s.XDPAhead != nil {
				comment = s.XDPAhead.String()
			}
			if i == 0 && pw.StatsComment != "" {
				comment = pw.StatsComment
			}
			if _, err := pw.buf.Write(appendISB(nil, uint32(i), pw.start, now, s.Seen, s.RingLost, comment)); err != nil {
				return fmt.Errorf("write pcapng statistics of %s: %w", s.Name, err)
			}
		}
	}
	return pw.buf.Flush()
}

// maxNgFilter is the longest filter text an interface block's if_filter
// option holds: an option's length is 16 bits, and the value starts with
// a byte saying the filter is text.
const maxNgFilter = 0xffff - 1

// ngFilterOption returns the if_filter text and the interface comment for
// a capture filter. A filter too long for the option is left out (pcapgo
// would write its length cut to 16 bits, and readers then call the whole
// file corrupt), with a comment saying why; it is not cut short, which
// would record a different filter than the one that ran.
func ngFilterOption(filter string) (text, comment string) {
	if len(filter) <= maxNgFilter {
		return filter, ""
	}
	return "", fmt.Sprintf("capture filter of %d bytes not recorded: a pcapng option holds at most %d", len(filter), maxNgFilter)
}
