package capture

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// TestPcapngPacketOptions writes packets of odd and even lengths, from XDP
// (RX queue and CPU known) and from libpcap (not), and reads them back with
// gopacket's pcapng reader: data, lengths, nanosecond timestamps, the
// inbound direction, the queue and the CPU comment, and the closing
// statistics block.
func TestPcapngPacketOptions(t *testing.T) {
	var file bytes.Buffer
	pw, err := NewPacketWriter(&file, PacketFileOptions{Format: "pcapng", Interface: "xs-tgt", Ifindex: 7, RxMode: "xdp",
		Filter: "tcp", Snaplen: 128})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 21, 8, 0, 0, 123456789, time.UTC)
	packets := []Packet{
		{TimeNs: ts.UnixNano(), CaptureLength: 3, Length: 60, FromXDP: true, RxQueue: 2, CPU: 1, Data: []byte{1, 2, 3}},
		{TimeNs: ts.UnixNano() + 1, CaptureLength: 8, Length: 8, FromXDP: true, RxQueue: 0, CPU: 17,
			Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{TimeNs: ts.UnixNano() + 1e9, CaptureLength: 5, Length: 1514, Data: []byte{9, 9, 9, 9, 9}},
		// longer than the writer's 64 KiB buffer
		{TimeNs: ts.UnixNano() + 2e9, CaptureLength: 70_001, Length: 70_001, FromXDP: true, CPU: 3, Data: bytes.Repeat([]byte{7}, 70_001)},
	}
	for i := range packets {
		if err := pw.Write(&packets[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(10, 1); err != nil {
		t.Fatal(err)
	}

	r, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if intf, err := r.Interface(0); err != nil || intf.Name != "xs-tgt" || intf.Description != "xdpscan XDP capture, ifindex 7" || intf.Filter != "tcp" {
		t.Fatalf("interface %+v (%v)", intf, err)
	}
	for i, want := range packets {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(data, want.Data) || ci.Length != want.Length || ci.Timestamp.UnixNano() != want.TimeNs {
			t.Fatalf("packet %d: % x, %+v; want % x, %+v", i, data, ci, want.Data, want)
		}
		if opts.Flags == nil || opts.Flags.Direction != pcapgo.NgEpbFlagDirectionInbound {
			t.Errorf("packet %d: flags %+v, want inbound", i, opts.Flags)
		}
		switch {
		case want.FromXDP && (opts.Queue == nil || *opts.Queue != want.RxQueue ||
			len(opts.Comments) != 1 || opts.Comments[0] != "cpu "+strconv.Itoa(int(want.CPU))):
			t.Errorf("packet %d: queue %v, comments %q; want queue %d, cpu %d", i, opts.Queue, opts.Comments, want.RxQueue, want.CPU)
		case !want.FromXDP && (opts.Queue != nil || len(opts.Comments) != 0):
			t.Errorf("packet %d from libpcap: queue %v, comments %q; want neither", i, opts.Queue, opts.Comments)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Fatalf("after the packets: %v, want EOF", err)
	}
	stats, err := r.Interface(0)
	if err != nil || stats.Statistics.PacketsReceived != 10 || stats.Statistics.PacketsDropped != 1 {
		t.Fatalf("statistics %+v (%v)", stats.Statistics, err)
	}
}

// TestPcapRecords writes pcap files with microsecond and nanosecond
// timestamps, including a record longer than the writer's buffer, and reads
// them back with gopacket's pcap reader.
func TestPcapRecords(t *testing.T) {
	ts := time.Date(2026, 11, 21, 8, 0, 0, 123456789, time.UTC)
	big := make([]byte, 70_000) // longer than the 64 KiB buffer
	for i := range big {
		big[i] = byte(i)
	}
	packets := []Packet{
		{TimeNs: ts.UnixNano(), CaptureLength: 3, Length: 60, FromXDP: true, Data: []byte{1, 2, 3}},
		{TimeNs: ts.UnixNano() + 1e9 + 999, CaptureLength: len(big), Length: len(big), Data: big},
		{TimeNs: ts.UnixNano() + 2e9, CaptureLength: 5, Length: 1514, Data: []byte{9, 9, 9, 9, 9}},
	}
	for _, tc := range []struct {
		name string
		nano bool
		res  time.Duration
	}{{"microseconds", false, time.Microsecond}, {"nanoseconds", true, time.Nanosecond}} {
		t.Run(tc.name, func(t *testing.T) {
			var file bytes.Buffer
			pw, err := NewPacketWriter(&file, PacketFileOptions{Format: "pcap", Nano: tc.nano, Snaplen: 262144})
			if err != nil {
				t.Fatal(err)
			}
			for i := range packets {
				if err := pw.Write(&packets[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := pw.Close(0, 0); err != nil {
				t.Fatal(err)
			}
			r, err := pcapgo.NewReader(&file)
			if err != nil {
				t.Fatal(err)
			}
			r.SetSnaplen(1 << 20)
			for i, want := range packets {
				data, ci, err := r.ReadPacketData()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				wantTime := time.Unix(0, want.TimeNs).Truncate(tc.res)
				if !bytes.Equal(data, want.Data) || ci.Length != want.Length || !ci.Timestamp.Equal(wantTime) {
					t.Fatalf("packet %d: %d bytes, %+v; want %d bytes, length %d, %v", i, len(data), ci, len(want.Data), want.Length, wantTime)
				}
			}
			if _, _, err := r.ReadPacketData(); err != io.EOF {
				t.Fatalf("after the packets: %v, want EOF", err)
			}
		})
	}
}

func BenchmarkPcapngWrite(b *testing.B) {
	pw, err := NewPacketWriter(io.Discard, PacketFileOptions{Format: "pcapng", Interface: "xs-tgt", Snaplen: 128})
	if err != nil {
		b.Fatal(err)
	}
	p := Packet{TimeNs: time.Now().UnixNano(), CaptureLength: 128, Length: 1514,
		FromXDP: true, RxQueue: 3, CPU: 1, Data: make([]byte, 128)}
	b.ReportAllocs()
	for b.Loop() {
		pw.Write(&p)
	}
}

func BenchmarkPcapWrite(b *testing.B) {
	pw, err := NewPacketWriter(io.Discard, PacketFileOptions{Format: "pcap", Nano: true, Interface: "xs-tgt", Snaplen: 128})
	if err != nil {
		b.Fatal(err)
	}
	p := Packet{TimeNs: time.Now().UnixNano(), CaptureLength: 60, Length: 60,
		FromXDP: true, RxQueue: 3, CPU: 1, Data: make([]byte, 60)}
	b.ReportAllocs()
	for b.Loop() {
		pw.Write(&p)
	}
}

// TestPcapngLongFilter writes files whose capture filter is at, and past,
// what a pcapng option holds: each stays valid for gopacket's reader and
// for tshark, with the filter recorded whole or, past the limit, left out
// with a comment saying why.
func TestPcapngLongFilter(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is needed to check the file is valid for Wireshark (apt-get install tshark)")
	}
	tests := []struct {
		name        string
		filterLen   int
		wantFilter  bool
		wantComment string
	}{
		{"short", 3, true, ""},
		{"the longest an option holds", maxNgFilter, true, ""},
		{"one byte over", maxNgFilter + 1, false, "capture filter of 65535 bytes not recorded: a pcapng option holds at most 65534"},
		{"1 MiB", 1 << 20, false, "capture filter of 1048576 bytes not recorded: a pcapng option holds at most 65534"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			filter := strings.Repeat("x", tc.filterLen)
			var file bytes.Buffer
			pw, err := NewPacketWriter(&file, PacketFileOptions{Format: "pcapng", Interface: "bf-tgt", RxMode: "xdp", Filter: filter, Snaplen: 128})
			if err != nil {
				t.Fatal(err)
			}
			frame := bytes.Repeat([]byte{0xff}, 60)
			if err := pw.Write(&Packet{TimeNs: time.Now().UnixNano(), CaptureLength: 60, Length: 60, Data: frame}); err != nil {
				t.Fatal(err)
			}
			if err := pw.Close(1, 0); err != nil {
				t.Fatal(err)
			}
			r, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.DefaultNgReaderOptions)
			if err != nil {
				t.Fatal(err)
			}
			intf, err := r.Interface(0)
			if err != nil {
				t.Fatal(err)
			}
			if got := intf.Filter == filter; got != tc.wantFilter || (!tc.wantFilter && intf.Filter != "") {
				t.Errorf("filter of %d bytes read back, want the %d bytes written: %v", len(intf.Filter), len(filter), tc.wantFilter)
			}
			if intf.Comment != tc.wantComment {
				t.Errorf("comment %q, want %q", intf.Comment, tc.wantComment)
			}
			if data, _, err := r.ReadPacketData(); err != nil || !bytes.Equal(data, frame) {
				t.Fatalf("packet: % x, %v", data, err)
			}
			path := filepath.Join(t.TempDir(), "long-filter.pcapng")
			if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "frame.len")
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || strings.TrimSpace(string(out)) != "60" || strings.Contains(stderr.String(), "corrupt") {
				t.Fatalf("tshark -r: %v, frame lengths %q\n%s", err, out, stderr.String())
			}
		})
	}
}
