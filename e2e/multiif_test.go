package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/testbed"
)

// sendFramesOn sends frames out of interface ifname in namespace ns.
func sendFramesOn(t *testing.T, ns, ifname string, frames [][]byte) {
	t.Helper()
	sendRaw(t, ns, ifname, frames, 1, 20*time.Microsecond)
}

// Two interfaces into one pcapng (issue 19 part 5): tshark reads both
// interface blocks and each interface's packets, in timestamp order;
// the statistics blocks at the end give each interface's counts. In both
// directions by default, as tcpdump: what cra sends is in the file too,
// outbound; and with a ring per CPU.
func TestCaptureTwoInterfacesOneFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		out  bool // sent packets are captured
	}{
		{"received", []string{"-Q", "in"}, false},
		{"both directions", nil, true},
		{"both directions, per-CPU rings", []string{"--rings", "per-cpu"}, true},
		// The TC programs write into the first XDP program's ring, which
		// must then have -B's size too (a smaller ring was refused).
		{"both directions, -B 1024", []string{"-B", "1024", "-s", "128"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			twoInterfacesOneFile(t, tc.args, tc.out)
		})
	}
}

func twoInterfacesOneFile(t *testing.T, args []string, withOut bool) {
	tb := upTestbed(t, testbed.Config{})
	// A second link inside the target's namespace: frames sent into crb
	// arrive on cra.
	ns := tb.TargetNS()
	for _, args := range [][]string{
		{"-n", ns, "link", "add", "cra", "type", "veth", "peer", "name", "crb"},
		{"-n", ns, "link", "set", "cra", "up"},
		{"-n", ns, "link", "set", "crb", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	dir := t.TempDir()
	file, stats := filepath.Join(dir, "two.pcapng"), filepath.Join(dir, "stats.json")
	cmd := exec.Command("ip", append(append([]string{"netns", "exec", ns, binary, "capture", "-i", testbed.TargetIf, "-i", "cra",
		"--duration", "30s", "-w", file, "--stats-json", stats}, args...), "udp")...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitAttached(t, cmd, &stderr, ns, testbed.TargetIf, "cra")

	// 500 UDP frames from the scanner onto xs-tgt, 200 onto cra, taking
	// turns so that the two streams interleave in time.
	var onCra [][]byte
	for i := 0; i < 200; i++ {
		onCra = append(onCra, testpkt.Build(testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: testbed.TargetMAC,
			Src: testbed.ScanIP, Dst: netip.AddrFrom4([4]byte{198, 18, 9, byte(i)}),
			L4: &layers.UDP{SrcPort: 34000, DstPort: 7000}, Payload: make([]byte, 18)}))
	}
	var onTgt [][]byte
	for _, f := range knownTraffic() {
		if len(f) > 14+9 && f[14+9] == 17 { // the UDP ones
			onTgt = append(onTgt, f)
		}
	}
	// And 100 that cra sends (to crb): outbound on cra.
	var fromCra [][]byte
	for i := 0; i < 100; i++ {
		fromCra = append(fromCra, testpkt.Build(testpkt.Frame{SrcMAC: testbed.TargetMAC, DstMAC: testbed.ScanMAC,
			Src: netip.AddrFrom4([4]byte{198, 18, 9, byte(i)}), Dst: testbed.ScanIP,
			L4: &layers.UDP{SrcPort: 7100, DstPort: 34000}, Payload: make([]byte, 18)}))
	}
	for i := 0; i < 5; i++ {
		sendFrames(t, tb, onTgt[i*100:(i+1)*100])
		sendFramesOn(t, ns, "crb", onCra[i*40:(i+1)*40])
		sendFramesOn(t, ns, "cra", fromCra[i*20:(i+1)*20])
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr.String())
	}
	var st capture.Stats
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	onCraWant, sent := uint64(200), uint64(0)
	if withOut {
		onCraWant, sent = 300, 100
	}
	if len(st.Interfaces) != 2 || st.Interfaces[0].Written != 500 || st.Interfaces[1].Written != onCraWant ||
		st.Interfaces[0].Matched != 500 || st.Interfaces[1].Matched != onCraWant || st.Written != 500+onCraWant {
		t.Fatalf("stats: %+v, want xs-tgt 500 and cra %d matched and written", st.Interfaces, onCraWant)
	}
	if st.Inbound == nil || st.Inbound.Written != 700 || (st.Outbound == nil) == withOut ||
		st.Outbound != nil && st.Outbound.Written != sent {
		t.Fatalf("stats per direction: in %+v, out %+v: want 700 received and %d sent written", st.Inbound, st.Outbound, sent)
	}
	if st.Rings == nil || st.Rings.Late != 0 {
		t.Errorf("rings %+v: want 0 late on a quiet testbed", st.Rings)
	}

	// tshark: two interface blocks, named; each packet on its interface.
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.interface_id",
		"-e", "frame.interface_name", "-e", "frame.time_epoch", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	count := map[string]int{}
	prev := 0.0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("tshark line %q", line)
		}
		count[f[0]+" "+f[1]+" "+f[3]]++
		ts, _ := strconv.ParseFloat(f[2], 64)
		if ts < prev {
			t.Errorf("packet at %s written after one at %f: not in timestamp order", f[2], prev)
		}
		prev = ts
	}
	want := map[string]int{"0 xs-tgt 5000": 300, "0 xs-tgt 6000": 200, "1 cra 7000": 200}
	if withOut {
		want["1 cra 34000"] = 100
	}
	if len(count) != len(want) {
		t.Fatalf("tshark per interface and port: %v, want %v", count, want)
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("tshark per interface and port: %v, want %v", count, want)
		}
	}

	// The statistics blocks, one per interface (pcapgo reads them).
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	isb := map[int]pcapgo.NgInterfaceStatistics{}
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{StatisticsCallback: func(i int, s pcapgo.NgInterfaceStatistics) { isb[i] = s }})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if r.NInterfaces() != 2 {
		t.Fatalf("%d interface blocks, want 2", r.NInterfaces())
	}
	for i, s := range st.Interfaces {
		if got := isb[i]; got.PacketsReceived != s.Seen || got.PacketsDropped != 0 {
			t.Errorf("interface %d statistics block %+v, want received %d (seen), dropped 0", i, got, s.Seen)
		}
	}
}

// waitAttached waits until an XDP program is on every interface of ifaces.
func waitAttached(t *testing.T, cmd *exec.Cmd, stderr *lockedBuffer, ns string, ifaces ...string) {
	t.Helper()
	// "listening on" comes once every program on every interface is
	// attached: XDP, or TC ingress where --mode auto would be generic XDP.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "listening on"); {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("capture never attached to %s:\n%s", strings.Join(ifaces, ", "), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
