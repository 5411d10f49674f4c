package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/testbed"
)

// knownTraffic is exactly what the scanner namespace sends for the capture
// tests: 300 UDP to port 5000, 200 UDP to port 6000, 100 TCP to port 81
// (25 each SYN, SYN-ACK, RST, ACK). Nothing else crosses the link towards
// the target (static neighbours, no IPv6).
func knownTraffic() [][]byte {
	var out [][]byte
	mk := func(i int, l4 any) []byte {
		f := testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: testbed.TargetMAC, Src: testbed.ScanIP,
			Dst: netip.AddrFrom4([4]byte{198, 18, 6, byte(i % 200)})}
		switch l := l4.(type) {
		case *layers.UDP:
			f.L4, f.Payload = l, make([]byte, 18)
		case *layers.TCP:
			f.L4 = l
		}
		return testpkt.Build(f)
	}
	for i := 0; i < 300; i++ {
		out = append(out, mk(i, &layers.UDP{SrcPort: 33000, DstPort: 5000}))
	}
	for i := 0; i < 200; i++ {
		out = append(out, mk(i, &layers.UDP{SrcPort: 33000, DstPort: 6000}))
	}
	// TCP in four flag classes, 25 each: SYN, SYN-ACK, RST, ACK.
	for i := 0; i < 100; i++ {
		out = append(out, mk(i, testpkt.TCP(40000, 81, uint32(i), 1, []string{"S", "SA", "R", "A"}[i%4])))
	}
	return out
}

func sendFrames(t *testing.T, tb *testbed.Testbed, frames [][]byte) {
	t.Helper()
	sendRaw(t, tb.ScanNS(), testbed.ScanIf, frames, 1, 20*time.Microsecond) // well below any backlog limit
}

// sendRaw sends frames out of interface ifname in namespace ns with
// AF_PACKET, in bursts of burst frames with pause after each.
func sendRaw(t *testing.T, ns, ifname string, frames [][]byte, burst int, pause time.Duration) {
	t.Helper()
	err := testbed.Do(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
		for i, f := range frames {
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				return fmt.Errorf("send frame %d (%d bytes): %w", i, len(f), err)
			}
			if i%burst == burst-1 {
				time.Sleep(pause)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
}

// runCapture runs `xdpscan capture` on the target's interface while the
// known traffic is sent, then stops it with SIGINT like a user would.
func runCapture(t *testing.T, tb *testbed.Testbed, args ...string) capture.Stats {
	t.Helper()
	return runCaptureWrapped(t, tb, nil, t.TempDir(), args...)
}

// runCaptureWrapped is runCapture with the binary started through wrap
// (setpriv, ...) inside the namespace, its stats written in dir.
func runCaptureWrapped(t *testing.T, tb *testbed.Testbed, wrap []string, dir string, args ...string) capture.Stats {
	t.Helper()
	stats := filepath.Join(dir, "stats.json")
	full := append(append([]string{"netns", "exec", tb.TargetNS()}, wrap...), binary, "capture", "-i", testbed.TargetIf,
		"--duration", "30s", "--stats-json", stats)
	full = append(full, args...)
	cmd := exec.Command("ip", full...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(args, " "), "--rx pcap") {
		time.Sleep(1500 * time.Millisecond) // libpcap gives no attach signal
	} else {
		// "listening on" comes once every program is attached: XDP, or
		// TC ingress where --mode auto would be generic XDP (veth).
		deadline := time.Now().Add(5 * time.Second)
		for {
			if strings.Contains(stderr.String(), "listening on") {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("capture never attached:\n%s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sendFrames(t, tb, knownTraffic())
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"packets captured", "packets received by filter", "packets dropped by kernel"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr.String())
		}
	}
	var st capture.Stats
	b, err := readFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// tsharkCount is how many packets tshark reads in file.
func tsharkCount(t *testing.T, file string) int {
	t.Helper()
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	return len(strings.Fields(string(out)))
}

func TestCaptureWritesExactlyTheMatches(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed (`make deps`)")
	}
	tb := upTestbed(t, testbed.Config{})
	for _, tc := range []struct {
		name string
		args []string
		file string
	}{
		{"xdp pcapng", []string{"--snaplen", "128"}, "out.pcapng"},
		{"xdp pcap nano", []string{"--time-stamp-precision", "nano"}, "out.pcap"},
		{"libpcap baseline", []string{"--rx", "pcap"}, "base.pcapng"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), tc.file)
			st := runCapture(t, tb, append(tc.args, "-w", file, "udp dst port 5000")...)
			if st.Written != 300 || st.Matched != 300 || st.RingLost != 0 || st.WriterLost != 0 {
				t.Fatalf("stats %+v: want 300 matched and written, nothing lost", st)
			}
			if n := tsharkCount(t, file); n != 300 {
				t.Fatalf("tshark reads %d packets in %s, want 300", n, tc.file)
			}
			if st.RxMode == "xdp" && (st.Inbound == nil || st.Inbound.Seen != 600) {
				t.Errorf("XDP saw %+v packets, 600 were sent", st.Inbound)
			}
			if tc.file == "out.pcapng" {
				// Every packet says where XDP saw it: inbound, on RX queue 0
				// (veth has one), with the CPU that ran the program.
				out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.packet_flags_direction",
					"-e", "frame.interface_queue", "-e", "frame.comment").Output()
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				for _, line := range lines {
					f := strings.Split(line, "\t")
					if len(f) != 3 || f[0] != "0x00000001" || f[1] != "0" || !strings.HasPrefix(f[2], "cpu ") {
						t.Fatalf("tshark reads packet options %q, want inbound, queue 0, a cpu comment", line)
					}
				}
				if len(lines) != 300 {
					t.Fatalf("%d packets with options, want 300", len(lines))
				}
			}
			if strings.Contains(tc.name, "128") || tc.args[0] == "--snaplen" {
				out, _ := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.cap_len").Output()
				for _, f := range strings.Fields(string(out)) {
					if n, _ := strconv.Atoi(f); n > 128 {
						t.Fatalf("a packet kept %d bytes with --snaplen 128", n)
					}
				}
			}
		})
	}
}

func TestCaptureCountOnlyCountsExactly(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	st := runCapture(t, tb, "--count-only", "udp")
	// -Q inout: the target's answers (RSTs, port unreachables) are seen
	// on the way out, and none is UDP.
	if st.Inbound == nil || st.Inbound.Seen != 600 || st.Matched != 500 || st.Written != 0 || st.Counters.UDP != 500 || st.Counters.TCP != 100 {
		t.Fatalf("count-only %+v: want 600 seen coming in, 500 udp matched, 100 tcp, nothing written", st)
	}
	if c := st.Counters; c.TCPSyn != 25 || c.TCPSynAck != 25 || c.TCPRst != 25 || c.TCPOther != 25 || c.TCPFin != 0 {
		t.Fatalf("TCP flag classes %+v: want 25 each of syn, syn-ack, rst, other, no fin", c)
	}
}

func TestCaptureBadInput(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"filter does not compile", []string{"-i", testbed.TargetIf, "tcp", "and", "and", "udp"}, "syntax error"},
		{"unknown interface", []string{"-i", "eth9", "tcp"}, "interface eth9: no such interface"},
		{"unwritable file", []string{"-i", testbed.TargetIf, "-w", "/nonexistent/x.pcapng"}, "cannot write"},
		{"-F and a filter", []string{"-i", testbed.TargetIf, "-F", "/etc/hostname", "tcp"}, "give one of them"},
		{"-r missing file", []string{"-r", "/nonexistent.pcap"}, "-r /nonexistent.pcap: cannot read it"},
		{"-r with -i", []string{"-r", "/etc/hostname", "-i", testbed.TargetIf}, "has no use with it"},
		{"-r not a capture file", []string{"-r", "/etc/hostname"}, "not a pcap or pcapng file"},
		{"-U without -w", []string{"-i", testbed.TargetIf, "-U"}, "give -w FILE"},
		{"--print with -w -", []string{"-i", testbed.TargetIf, "--print", "-w", "-"}, "would share stdout"},
		{"-B too large", []string{"-i", testbed.TargetIf, "-B", "5000000"}, "-B 5000000"},
		{"filter hint", []string{"-i", testbed.TargetIf, "tcp", "port80"}, `hint: "port80"`},
		{"snaplen past tcpdump's largest", []string{"-i", testbed.TargetIf, "-s", "262145"}, "--snaplen 262145"},
		{"absurd snaplen", []string{"-i", testbed.TargetIf, "-s", "100000000"}, "--snaplen 100000000"},
		{"no interface", []string{"tcp"}, "-i IFACE is required"},
		{"unknown direction", []string{"-i", testbed.TargetIf, "-Q", "sideways", "tcp"}, `-Q "sideways": use in, out or inout`},
		{"unknown egress hook", []string{"-i", testbed.TargetIf, "--egress-hook", "qdisc", "tcp"}, `--egress-hook "qdisc": use auto, tcx or clsact`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("ip", append([]string{"netns", "exec", tb.TargetNS(), binary, "capture", "--duration", "2s"}, tc.args...)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "panic") {
				t.Fatalf("err %v, output %q: want %q", err, out, tc.want)
			}
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit status %d, want 2 (bad input): %s", code, out)
			}
		})
	}
}
