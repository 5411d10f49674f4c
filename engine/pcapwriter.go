package engine

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// PacketWriter writes captured packets to a pcapng or pcap file that
// Wireshark, tshark and gopacket read, buffered and without allocation per
// packet.
//
// pcapgo writes the pcapng section and interface blocks and the closing
// statistics; the packet blocks are written here, because each carries
// options pcapgo would allocate for on every packet: the inbound direction
// (epb_flags), the RX queue (epb_queue) and, as a comment, the CPU that ran
// the XDP program.
type PacketWriter struct {
	buf     *bufio.Writer
	ng      *pcapgo.NgWriter
	pcap    *pcapgo.Writer
	start   time.Time
	scratch [96]byte
}

// PacketFileOptions describe the file.
type PacketFileOptions struct {
	Format    string // "pcapng" or "pcap"
	Nano      bool   // pcap only: nanosecond timestamps (pcapng always has them)
	Interface string
	Ifindex   int    // the kernel's, recorded in the interface description
	RxMode    string // "xdp" or "pcap": who captured, in the description
	Filter    string
	Snaplen   uint32
	OS        string
}

// NewPacketWriter writes the file header (and for pcapng, the interface
// description) to w.
func NewPacketWriter(w io.Writer, o PacketFileOptions) (*PacketWriter, error) {
	pw := &PacketWriter{buf: bufio.NewWriterSize(w, 64<<10), start: time.Now()}
	switch o.Format {
	case "pcapng":
		desc := "xdpscan XDP capture"
		if o.RxMode == "pcap" {
			desc = "xdpscan libpcap capture"
		}
		if o.Ifindex > 0 {
			desc += ", ifindex " + strconv.Itoa(o.Ifindex)
		}
		ng, err := pcapgo.NewNgWriterInterface(pw.buf, pcapgo.NgInterface{
			Name: o.Interface, Description: desc, Filter: o.Filter, OS: o.OS,
			LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, SnapLength: o.Snaplen,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "xdpscan"}})
		if err == nil {
			err = ng.Flush() // its blocks go before the packets written here
		}
		if err != nil {
			return nil, fmt.Errorf("write pcapng header: %w", err)
		}
		pw.ng = ng
	case "pcap":
		if o.Nano {
			pw.pcap = pcapgo.NewWriterNanos(pw.buf)
		} else {
			pw.pcap = pcapgo.NewWriter(pw.buf)
		}
		if err := pw.pcap.WriteFileHeader(o.Snaplen, layers.LinkTypeEthernet); err != nil {
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
)

// Write writes one packet.
func (pw *PacketWriter) Write(p *CapturedPacket) error {
	if pw.ng == nil {
		return pw.pcap.WritePacket(p.Info, p.Data)
	}
	// Options first, into scratch after the 28-byte block header, to know
	// the block's length.
	opts := pw.scratch[28:28]
	opts = appendOption32(opts, optEpbFlags, epbInbound)
	if p.FromXDP {
		opts = appendOption32(opts, optEpbQueue, p.RxQueue)
		n := len(opts)
		opts = binary.LittleEndian.AppendUint16(opts, optComment)
		opts = binary.LittleEndian.AppendUint16(opts, 0)
		opts = append(opts, "cpu "...)
		opts = strconv.AppendUint(opts, uint64(p.CPU), 10)
		binary.LittleEndian.PutUint16(opts[n+2:], uint16(len(opts)-n-4))
		opts = append(opts, zeroPad[:pad4(len(opts))]...)
	}
	opts = append(opts, 0, 0, 0, 0) // opt_endofopt

	dataPad := pad4(len(p.Data))
	total := 28 + len(p.Data) + dataPad + len(opts) + 4
	h := pw.scratch[:28]
	ts := p.Info.Timestamp.UnixNano()
	binary.LittleEndian.PutUint32(h[0:], blockEPB)
	binary.LittleEndian.PutUint32(h[4:], uint32(total))
	binary.LittleEndian.PutUint32(h[8:], uint32(p.Info.InterfaceIndex))
	binary.LittleEndian.PutUint32(h[12:], uint32(uint64(ts)>>32))
	binary.LittleEndian.PutUint32(h[16:], uint32(ts))
	binary.LittleEndian.PutUint32(h[20:], uint32(p.Info.CaptureLength))
	binary.LittleEndian.PutUint32(h[24:], uint32(p.Info.Length))
	pw.buf.Write(h)
	pw.buf.Write(p.Data)
	pw.buf.Write(zeroPad[:dataPad])
	pw.buf.Write(opts)
	trailer := pw.scratch[len(pw.scratch)-4:] // not a local: bufio may hand it to the file, so it would escape
	binary.LittleEndian.PutUint32(trailer, uint32(total))
	_, err := pw.buf.Write(trailer) // bufio keeps the first error: it is this one's
	return err
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
	if pw.ng != nil {
		now := time.Now()
		if err := pw.ng.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{LastUpdate: now, StartTime: pw.start,
			EndTime: now, PacketsReceived: received, PacketsDropped: dropped}); err != nil {
			return fmt.Errorf("write pcapng statistics: %w", err)
		}
		if err := pw.ng.Flush(); err != nil {
			return err
		}
	}
	return pw.buf.Flush()
}
