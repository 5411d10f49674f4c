package capture

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/loader"
)

// FileOptions is where and how a capture's packets are written.
type FileOptions struct {
	Path string // "-": standard output
	// InPlace writes the file itself instead of a temporary file renamed
	// over it when it closes (outfile.CreateInPlace): for a process that
	// may no longer write the directory by then.
	InPlace bool
	Pcap    bool // classic pcap; also when Path ends in .pcap (else pcapng)
	Nano    bool // pcap timestamps in nanoseconds (pcapng always is)
	Iface   string
	RxMode  loader.RxMode
	Filter  string
	Snaplen uint32
	// MoreIfaces: a capture on several interfaces (pcapng only).
	MoreIfaces []string
}

// File is a capture file being written. It replaces an existing file only
// when it closes well (or after a capture that wrote packets: they are the
// user's data), so a capture that fails to start leaves it as it was.
type File struct {
	pw   *PacketWriter
	file *outfile.Replace
}

// CreateFile opens the file and writes its header. Call it once the
// capture runs (Config.Ready).
func CreateFile(o FileOptions) (*File, error) {
	f := &File{}
	var w io.Writer = os.Stdout
	if o.Path != "-" {
		create := outfile.CreateReplace
		if o.InPlace {
			create = outfile.CreateInPlace
		}
		r, err := create(o.Path, 0o644)
		if err != nil {
			return nil, fmt.Errorf("-w: %w", err)
		}
		f.file, w = r, r
	}
	pw, err := NewPacketWriter(w, packetFileOptions(o))
	if err != nil {
		if f.file != nil {
			f.file.Abort()
		}
		return nil, err
	}
	f.pw = pw
	return f, nil
}

// packetFileOptions describes the file o asks for: pcapng unless o.Pcap
// or a name ending in .pcap, the interface's kernel ifindex, this kernel.
func packetFileOptions(o FileOptions) PacketFileOptions {
	format := "pcapng"
	if o.Pcap || strings.HasSuffix(o.Path, ".pcap") {
		format = "pcap"
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	ifindex := 0
	if ifc, err := net.InterfaceByName(o.Iface); err == nil {
		ifindex = ifc.Index
	}
	var more []MoreInterface
	for _, name := range o.MoreIfaces {
		m := MoreInterface{Name: name}
		if ifc, err := net.InterfaceByName(name); err == nil {
			m.Ifindex = ifc.Index
		}
		more = append(more, m)
	}
	return PacketFileOptions{Format: format, Nano: o.Nano,
		Interface: o.Iface, Ifindex: ifindex, RxMode: o.RxMode, Filter: o.Filter, Snaplen: o.Snaplen,
		OS: "Linux " + unix.ByteSliceToString(uts.Release[:]), More: more}
}

// Write writes one packet.
func (f *File) Write(p *Packet) error { return f.pw.Write(p) }

// Close finishes the file with the capture's figures and returns the
// capture's error runErr, or else the first error closing the file.
func (f *File) Close(st Stats, runErr error) error {
	err := runErr
	f.pw.StatsComment = st.Loss.String()
	var cerr error
	if len(st.Interfaces) > 0 {
		cerr = f.pw.CloseInterfaces(st.Interfaces)
	} else {
		cerr = f.pw.Close(st.Seen, st.RingLost)
	}
	if cerr != nil && err == nil {
		err = fmt.Errorf("close capture file: %w", cerr)
	}
	if f.file != nil {
		if cerr == nil && (err == nil || st.Written > 0) {
			if cerr := f.file.Commit(); cerr != nil && err == nil {
				err = fmt.Errorf("-w: %w", cerr)
			}
		} else {
			f.file.Abort()
		}
	}
	return err
}
