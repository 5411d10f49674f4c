package capture

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// TestOfflineRunsThroughTheProgram: -r runs each packet of a file through
// the capture program; its matches and their bytes are the ones tcpdump
// -r finds with the same filter, for pcap and for a pcapng with two
// interfaces, with snaplen, -c and count-only.
func TestOfflineRunsThroughTheProgram(t *testing.T) {
	bpftest.Require(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	pcapPath, corpus := corpusPcap(t)
	ngPath := filepath.Join(t.TempDir(), "two.pcapng")
	writeTwoInterfaces(t, ngPath, corpus)
	tests := []struct {
		name, file, filter string
		snaplen            uint32
		count              uint64
		countOnly          bool
	}{
		{"all of a pcap", pcapPath, "", 262144, 0, false},
		{"tcp", pcapPath, "tcp", 262144, 0, false},
		{"icmp or icmp6", pcapPath, "icmp or icmp6", 262144, 0, false},
		{"vlan", pcapPath, "vlan", 262144, 0, false},
		{"snaplen 40", pcapPath, "ip", 40, 0, false},
		{"-c 3", pcapPath, "udp", 262144, 3, false},
		{"count-only", pcapPath, "ip6", 262144, 0, true},
		{"pcapng with two interfaces", ngPath, "tcp or arp", 262144, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]byte
			write := func(p *Packet) error {
				got = append(got, append([]byte(nil), p.Data...))
				return nil
			}
			if tc.countOnly {
				write = nil
			}
			st, err := Run(context.Background(), Config{ReadFile: tc.file, Filter: tc.filter, Snaplen: tc.snaplen,
				Count: tc.count, CountOnly: tc.countOnly}, &Progress{}, write)
			if err != nil {
				t.Fatal(err)
			}
			want := tcpdumpMatches(t, tc.file, tc.filter, tc.snaplen, tc.count)
			if tc.countOnly {
				if st.Matched != uint64(len(want)) || st.Written != 0 {
					t.Fatalf("count-only: matched %d, written %d; tcpdump -r matches %d", st.Matched, st.Written, len(want))
				}
				return
			}
			if len(got) != len(want) {
				t.Fatalf("%d packets written, tcpdump -r writes %d (stats %+v)", len(got), len(want), st)
			}
			for i := range got {
				// tcpdump -r -s does not cut what it writes: cut it here
				want[i] = want[i][:min(len(want[i]), int(tc.snaplen))]
				if string(got[i]) != string(want[i]) {
					t.Fatalf("packet %d:\n % x\ntcpdump:\n % x", i, got[i], want[i])
				}
			}
			if st.Written != uint64(len(want)) || st.Seen == 0 {
				t.Fatalf("stats %+v: want %d written", st, len(want))
			}
		})
	}
}

// tcpdumpMatches are the packets `tcpdump -r file -s snaplen -c count -w -
// filter` writes.
func tcpdumpMatches(t *testing.T, file, filter string, snaplen uint32, count uint64) [][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tcpdump.pcap")
	args := []string{"-r", file, "-w", out, "-s", itoa(int(snaplen))}
	if count > 0 {
		args = append(args, "-c", itoa(int(count)))
	}
	if filter != "" {
		args = append(args, filter)
	}
	if b, err := exec.Command("tcpdump", args...).CombinedOutput(); err != nil {
		t.Fatalf("tcpdump %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for {
		d, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, d)
	}
	return pkts
}

func itoa(n int) string { return strconv.Itoa(n) }

// writeTwoInterfaces writes the corpus as a pcapng whose packets alternate
// between two Ethernet interfaces.
func writeTwoInterfaces(t *testing.T, path string, corpus []testpkt.Named) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "a0", LinkType: layers.LinkTypeEthernet, SnapLength: 262144},
		pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.AddInterface(pcapgo.NgInterface{Name: "b1", LinkType: layers.LinkTypeEthernet, SnapLength: 262144})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range corpus {
		ci := gopacket.CaptureInfo{Timestamp: corpusTime.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(n.Frame), Length: len(n.Frame),
			InterfaceIndex: []int{0, second}[i%2]}
		if err := w.WritePacket(ci, n.Frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestOfflineFiltersMatchTcpdump: for each of testpkt.Filters, -r of a
// file of every frame kind, cut and damaged copies included, matches
// exactly as many packets as tcpdump -r.
func TestOfflineFiltersMatchTcpdump(t *testing.T) {
	bpftest.Require(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	path := filepath.Join(t.TempDir(), "mutated.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	frames := testpkt.Mutated()
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: corpusTime.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for _, expr := range testpkt.Filters {
		st, err := Run(context.Background(), Config{ReadFile: path, Filter: expr, Snaplen: 262144, CountOnly: true}, &Progress{}, nil)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		args := []string{"--count", "-r", path}
		if expr != "" {
			args = append(args, expr)
		}
		out, err := exec.Command("tcpdump", args...).Output()
		if err != nil {
			t.Fatalf("tcpdump %q: %v", expr, err)
		}
		want, _ := strconv.ParseUint(strings.Fields(string(out))[0], 10, 64)
		if st.Matched != want || st.Seen != uint64(len(frames)) {
			t.Errorf("filter %q: matched %d of %d, tcpdump -r %d", expr, st.Matched, st.Seen, want)
		}
	}
}

// TestOfflineShortAndLongFrames: a frame shorter than an Ethernet header
// (BPF_PROG_RUN refuses it) goes through libpcap's program in user space,
// matches as tcpdump -r would and is counted (UserFiltered); frames past
// a page go through BPF_PROG_RUN in fragments and are kept whole.
func TestOfflineShortAndLongFrames(t *testing.T) {
	bpftest.Require(t)
	a := netip.MustParseAddr
	frame := func(n int) []byte {
		if n < 42 {
			return make([]byte, n)
		}
		return testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.1"), L4: &layers.UDP{SrcPort: 1, DstPort: 2}, Payload: make([]byte, n-42)})
	}
	path := filepath.Join(t.TempDir(), "long.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(262144, layers.LinkTypeEthernet)
	sizes := []int{10, LinearProgRunBytes, LinearProgRunBytes + 1, 9000}
	for _, n := range sizes {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: corpusTime, CaptureLength: n, Length: n}, frame(n))
	}
	f.Close()
	for _, tc := range []struct {
		expr string
		want []int // caplen, len of each written packet
	}{
		{"udp", []int{LinearProgRunBytes, LinearProgRunBytes, LinearProgRunBytes + 1, LinearProgRunBytes + 1, 9000, 9000}},
		{"", []int{10, 10, LinearProgRunBytes, LinearProgRunBytes, LinearProgRunBytes + 1, LinearProgRunBytes + 1, 9000, 9000}},
		{"tcp", nil},
	} {
		var got []int
		st, err := Run(context.Background(), Config{ReadFile: path, Filter: tc.expr, Snaplen: 262144}, &Progress{}, func(p *Packet) error {
			got = append(got, p.CaptureLength, p.Length)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.UserFiltered != 1 {
			t.Fatalf("%q: %d frames filtered in user space, want 1 (the 10-byte one)", tc.expr, st.UserFiltered)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || st.Matched != uint64(len(tc.want)/2) {
			t.Fatalf("%q: captured (caplen, len) %v, matched %d; want %v", tc.expr, got, st.Matched, tc.want)
		}
	}
}
