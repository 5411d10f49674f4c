package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"go.uber.org/goleak"
)

// The rotation's finisher and -z runner are goroutines: none may outlive
// the Rotation.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPackets are n frames of size bytes, one every gap from start.
func testPackets(n, size int, start time.Time, gap time.Duration) []Packet {
	out := make([]Packet, n)
	for i := range out {
		data := bytes.Repeat([]byte{byte(i)}, size)
		out[i] = Packet{TimeNs: start.Add(time.Duration(i) * gap).UnixNano(), CaptureLength: size, Length: size, Data: data}
	}
	return out
}

// writeRotation writes pkts through a Rotation and returns the files it
// placed.
func writeRotation(t *testing.T, o RotateOptions, pkts []Packet) ([]string, error) {
	t.Helper()
	r, err := NewRotation(o)
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	var werr error
	for i := range pkts {
		if werr = r.Write(&pkts[i]); werr != nil {
			break
		}
		st.Written++
	}
	if errors.Is(werr, ErrFileLimit) {
		werr = nil
	}
	err = r.Close(st, werr)
	return r.Files(), err
}

// countIn reads a pcap or pcapng file whole: its packets and, for pcapng,
// its statistics block's received and dropped.
func countIn(t *testing.T, path string) (n int, ts []int64, isb *pcapgo.NgInterfaceStatistics) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(b, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		var stats pcapgo.NgInterfaceStatistics
		rd, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{
			StatisticsCallback: func(_ int, s pcapgo.NgInterfaceStatistics) { stats = s; isb = &stats }})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for {
			_, ci, err := rd.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return n, ts, isb
			}
			if err != nil {
				t.Fatalf("%s after %d packets: %v", path, n, err)
			}
			n++
			ts = append(ts, ci.Timestamp.UnixNano())
		}
	}
	rd, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		_, ci, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return n, ts, nil
		}
		if err != nil {
			t.Fatalf("%s after %d packets: %v", path, n, err)
		}
		n++
		ts = append(ts, ci.Timestamp.UnixNano())
	}
}

// listDir is the directory's names, hidden ones included.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// tcpdump itself rotates a savefile it reads (-r) with -C and -W: the same
// packets through a Rotation must give the same names holding the same
// numbers of packets.
func TestRotationBySizeIsTcpdumps(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	// 3,500 frames of 1,000 bytes: 3.56 MB of pcap, four files of -C 1.
	pkts := testPackets(3500, 1000, time.Unix(1_700_000_000, 0), time.Millisecond)
	in := filepath.Join(t.TempDir(), "in.pcap")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := NewPacketWriter(f, PacketFileOptions{Format: "pcap", Snaplen: 262144})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pkts {
		if err := pw.Write(&pkts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(0, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		name  string
		files int // -W
	}{
		{"-C 1", 0},
		{"-C 1 -W 3 (a ring)", 3},
		{"-C 1 -W 12 (two digits)", 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tdDir, ourDir := t.TempDir(), t.TempDir()
			args := []string{"-r", in, "-w", filepath.Join(tdDir, "out"), "-C", "1", "-Z", "root"}
			if tc.files > 0 {
				args = append(args, "-W", fmt.Sprint(tc.files))
			}
			if out, err := exec.Command("tcpdump", args...).CombinedOutput(); err != nil {
				t.Fatalf("tcpdump %v: %v\n%s", args, err, out)
			}
			if _, err := writeRotation(t, RotateOptions{File: FileOptions{Path: filepath.Join(ourDir, "out"), Pcap: true, Snaplen: 262144},
				SizeBytes: 1_000_000, Files: tc.files}, pkts); err != nil {
				t.Fatal(err)
			}
			want, got := listDir(t, tdDir), listDir(t, ourDir)
			if !slices.Equal(want, got) {
				t.Fatalf("files %v, tcpdump's %v", got, want)
			}
			for _, name := range want {
				n, _, _ := countIn(t, filepath.Join(ourDir, name))
				m, _, _ := countIn(t, filepath.Join(tdDir, name))
				if n != m {
					t.Errorf("%s holds %d packets, tcpdump's %d", name, n, m)
				}
			}
		})
	}
}

// -G: a file per period of the packets' time, named by strftime at the
// period's start; with -W the capture ends at the W-th file; pcapng files
// each end with their own statistics, which add up to the capture's.
func TestRotationByTime(t *testing.T) {
	// Packets every 100 ms for 4.5 s from a whole second.
	start := time.Unix(time.Now().Unix(), 0)
	pkts := testPackets(45, 60, start, 100*time.Millisecond)
	for _, tc := range []struct {
		name      string
		files     int
		wantFiles int
		wantPkts  int
	}{
		{"-G 1", 0, 5, 45},
		{"-G 1 -W 3 stops", 3, 3, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var seen uint64
			counters := func() (uint64, uint64, bool) { seen += 7; return seen, seen / 7, true }
			r, err := NewRotation(RotateOptions{File: FileOptions{Path: filepath.Join(dir, "cap-%H%M%S.pcapng")},
				Every: time.Second, Files: tc.files, Counters: counters})
			if err != nil {
				t.Fatal(err)
			}
			// The rotation's clock started now; its packets start at this
			// whole second.
			r.gtime = start.Unix()
			var st Stats
			for i := range pkts {
				err := r.Write(&pkts[i])
				if errors.Is(err, ErrFileLimit) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				st.Written++
			}
			st.Seen, st.RingLost = 1000, 100
			if err := r.Close(st, nil); err != nil {
				t.Fatal(err)
			}
			files := r.Files()
			if len(files) != tc.wantFiles || len(listDir(t, dir)) != tc.wantFiles {
				t.Fatalf("files %v (directory %v), want %d", files, listDir(t, dir), tc.wantFiles)
			}
			total := 0
			var sumSeen, sumDropped uint64
			for i, f := range files {
				period := start.Add(time.Duration(i) * time.Second)
				if want := filepath.Join(dir, "cap-"+period.Format("150405")+".pcapng"); f != want {
					t.Errorf("file %d is %s, want %s", i, f, want)
				}
				n, ts, isb := countIn(t, f)
				total += n
				for _, x := range ts {
					if x < period.UnixNano() || x >= period.Add(time.Second).UnixNano() {
						t.Errorf("%s holds a packet of %s", f, time.Unix(0, x))
					}
				}
				if isb == nil {
					t.Fatalf("%s has no statistics block", f)
				}
				sumSeen += isb.PacketsReceived
				sumDropped += isb.PacketsDropped
			}
			if total != tc.wantPkts || uint64(total) != st.Written {
				t.Errorf("the files hold %d packets, %d written, want %d", total, st.Written, tc.wantPkts)
			}
			// Closed at the limit, the last file's figures are its own; at
			// the end of a capture, the rest of the capture's.
			if tc.files == 0 && (sumSeen != 1000 || sumDropped != 100) {
				t.Errorf("the files' statistics add up to %d seen, %d dropped; the capture's are 1000, 100", sumSeen, sumDropped)
			}
		})
	}
}

// A rotation never writes over a file it did not write: a name taken
// before the capture, or one the capture already used for an earlier
// period (a pattern coarser than -G), becomes NAME.1, NAME.2, ...
func TestRotationNeverReplacesAFile(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "out.pcap1")
	if err := os.WriteFile(keep, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	pkts := testPackets(3500, 1000, time.Unix(1_700_000_000, 0), time.Millisecond)
	files, err := writeRotation(t, RotateOptions{File: FileOptions{Path: filepath.Join(dir, "out.pcap")}, SizeBytes: 1_000_000, Log: &log}, pkts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(keep); string(b) != "keep me" {
		t.Fatalf("out.pcap1 was written over: %q", b)
	}
	want := []string{"out.pcap", "out.pcap1.1", "out.pcap2", "out.pcap3"}
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	if !slices.Equal(files, want) || !strings.Contains(log.String(), "out.pcap1 exists: this file is") {
		t.Fatalf("files %v, want %v; notices %q", files, want, log.String())
	}

	// -G 1 with a name without time: each period its own file.
	dir = t.TempDir()
	start := time.Unix(time.Now().Unix(), 0)
	r, err := NewRotation(RotateOptions{File: FileOptions{Path: filepath.Join(dir, "same.pcapng")}, Every: time.Second, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	r.gtime = start.Unix()
	for _, p := range testPackets(30, 60, start, 100*time.Millisecond) {
		if err := r.Write(&p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(Stats{Written: 30}, nil); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"same.pcapng", "same.pcapng.1", "same.pcapng.2"}) {
		t.Fatalf("files %v, want same.pcapng, .1, .2", got)
	}
}

// -z runs once per file a rotation closed, with the file complete and in
// place; the last file, closed by the end of the capture, gets none (as
// tcpdump).
func TestRotationPostRotate(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "z.log")
	script := filepath.Join(dir, "z.sh")
	// wc -c of the file as the command sees it: complete, in place.
	body := "#!/bin/sh\necho \"$1 $(wc -c < \"$1\")\" >> " + log + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	pkts := testPackets(3500, 1000, time.Unix(1_700_000_000, 0), time.Millisecond)
	files, err := writeRotation(t, RotateOptions{File: FileOptions{Path: filepath.Join(dir, "out.pcapng")}, SizeBytes: 1_000_000,
		Files: 3, PostRotate: script}, pkts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(files) < 4 || len(lines) != len(files)-1 {
		t.Fatalf("%d files, -z ran %d times: %q", len(files), len(lines), lines)
	}
	for i, line := range lines {
		name, size, _ := strings.Cut(line, " ")
		if name != files[i] || size == "0" {
			t.Errorf("-z run %d: %q, want %s complete", i, line, files[i])
		}
	}
	if got := listDir(t, dir); len(got) != 3+2 {
		t.Errorf("directory %v: want the ring's 3 files, the script and its log", got)
	}
}

func TestWflagChars(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{1, 0}, {2, 1}, {10, 1}, {11, 2}, {100, 2}, {101, 3}} {
		if got := wflagChars(tc.n); got != tc.want {
			t.Errorf("-W %d: %d digits, tcpdump pads to %d", tc.n, got, tc.want)
		}
	}
}

// BenchmarkRotation is the writer's cost per 60-byte packet with a
// rotation every 1 MB (-C 1), against one file: what the switch between
// files adds on the capture's goroutine.
func BenchmarkRotation(b *testing.B) {
	for _, size := range []int64{0, 1_000_000} {
		b.Run(fmt.Sprintf("C=%d", size), func(b *testing.B) {
			dir := b.TempDir()
			pkts := testPackets(1, 60, time.Now(), 0)
			var w interface{ Write(*Packet) error }
			var r *Rotation
			if size == 0 {
				f, err := CreateFile(FileOptions{Path: filepath.Join(dir, "one.pcapng")})
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close(Stats{Written: 1}, nil)
				w = f
			} else {
				var err error
				if r, err = NewRotation(RotateOptions{File: FileOptions{Path: filepath.Join(dir, "rot.pcapng")}, SizeBytes: size, Files: 4}); err != nil {
					b.Fatal(err)
				}
				w = r
			}
			b.ResetTimer()
			for range b.N {
				if err := w.Write(&pkts[0]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if r != nil {
				if err := r.Close(Stats{Written: uint64(b.N)}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
