package engine

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// PacketWriter writes captured packets to a pcapng or pcap file that
// Wireshark, tshark and gopacket read, buffered and without allocation per
// packet.
type PacketWriter struct {
	buf   *bufio.Writer
	ng    *pcapgo.NgWriter
	pcap  *pcapgo.Writer
	start time.Time
}

// PacketFileOptions describe the file.
type PacketFileOptions struct {
	Format    string // "pcapng" or "pcap"
	Nano      bool   // pcap only: nanosecond timestamps (pcapng always has them)
	Interface string
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
		ng, err := pcapgo.NewNgWriterInterface(pw.buf, pcapgo.NgInterface{
			Name: o.Interface, Description: "xdpscan XDP capture", Filter: o.Filter, OS: o.OS,
			LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, SnapLength: o.Snaplen,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "xdpscan"}})
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

// Write writes one packet.
func (pw *PacketWriter) Write(ci gopacket.CaptureInfo, data []byte) error {
	if pw.ng != nil {
		return pw.ng.WritePacket(ci, data)
	}
	return pw.pcap.WritePacket(ci, data)
}

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
