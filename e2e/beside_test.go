package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/testbed"
)

// foreignXDP compiles testdata/xdp_drop7777.c (drops UDP to port 7777,
// passes the rest) with clang and returns the object's path.
func foreignXDP(t *testing.T) string { return compileTestXDP(t, "testdata/xdp_drop7777.c") }

// fragsXDP is the same program with xdp.frags (section "xdp.frags"): in
// generic mode, after it, TC ingress gets frames without their MAC
// header (kernel 6.18; bpf/include/skbmac.h).
func fragsXDP(t *testing.T) string { return compileTestXDP(t, "testdata/xdp_drop7777_frags.c") }

func attachedXDPID(t *testing.T, tb *testbed.Testbed) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", tb.TargetNS(), "-d", "link", "show", testbed.TargetIf).Output()
	if err != nil {
		t.Fatal(err)
	}
	for f := strings.Fields(string(out)); len(f) > 1; f = f[1:] {
		if (f[0] == "xdp" || f[0] == "prog/xdp") && f[1] == "id" && len(f) > 2 {
			return f[2]
		}
	}
	return ""
}

// udpTo7777 are n UDP frames to the port the foreign program drops.
func udpTo7777(n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, testpkt.Build(testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: testbed.TargetMAC, Src: testbed.ScanIP,
			Dst: netip.AddrFrom4([4]byte{198, 18, 6, byte(i)}), L4: &layers.UDP{SrcPort: 33000, DstPort: 7777}, Payload: make([]byte, 18)}))
	}
	return out
}

// TestCaptureBesideForeignXDP: with someone else's XDP program on the
// interface (attached by `ip link set ... xdp obj`, and by xdp-loader),
// capture still runs: it takes received packets after that program, which
// stays attached, unchanged, and keeps dropping what it drops; three
// captures run at once beside it (one as uid 65534 with CAP_BPF and
// CAP_NET_ADMIN only, one with a ring per CPU), each writing every match.
func TestCaptureBesideForeignXDP(t *testing.T) {
	requireTools(t, "tshark")
	obj := foreignXDP(t)
	tb := upTestbed(t, testbed.Config{})
	for _, tc := range []struct {
		name           string
		attach, detach []string
	}{
		{"ip link", []string{"ip", "link", "set", "dev", testbed.TargetIf, "xdpgeneric", "obj", obj, "sec", "xdp"},
			[]string{"ip", "link", "set", "dev", testbed.TargetIf, "xdpgeneric", "off"}},
		{"xdp-loader", []string{"xdp-loader", "load", "-m", "skb", testbed.TargetIf, obj},
			[]string{"xdp-loader", "unload", testbed.TargetIf, "--all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.attach[0])
			ns := func(argv []string) *exec.Cmd {
				return exec.Command("ip", append([]string{"netns", "exec", tb.TargetNS()}, argv...)...)
			}
			if out, err := ns(tc.attach).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tc.attach, err, out)
			}
			defer ns(tc.detach).Run()
			id := attachedXDPID(t, tb)
			if id == "" {
				t.Fatal("the foreign program is not attached")
			}
			dir := nobodyDir(t)
			var caps []*bgCapture
			for i := range 3 {
				argv := []string{binary, "capture", "-i", testbed.TargetIf,
					"-Q", "in", "-w", filepath.Join(dir, fmt.Sprint(i, ".pcapng")), "--duration", "30s", "udp"}
				switch i {
				case 1: // the documented capabilities suffice beside another program
					argv = append(asNobody("bpf", "net_admin"), argv...)
				case 2: // the merged path (a ring per CPU) goes beside it too
					argv = append(argv[:len(argv)-1], "--rings", "per-cpu", "udp")
				}
				caps = append(caps, startBg(t, fmt.Sprint("capture ", i), tb.TargetNS(), argv...))
			}
			sendFrames(t, tb, append(udpTo7777(50), knownTraffic()...))
			time.Sleep(300 * time.Millisecond)
			for i, c := range caps {
				summary := c.stop(t)
				// The 500 UDP frames of the known traffic; the 50 to port 7777
				// the foreign program dropped never reach the capture.
				if n := tsharkCount(t, filepath.Join(dir, fmt.Sprint(i, ".pcapng"))); n != 500 {
					t.Fatalf("capture %d wrote %d packets, want 500\n%s", i, n, summary)
				}
				if !strings.Contains(summary, "in  seen 600, matched 500, written 500") || !strings.Contains(summary, "after the XDP program already attached") {
					t.Fatalf("capture %d summary:\n%s", i, summary)
				}
			}
			if got := attachedXDPID(t, tb); got != id {
				t.Fatalf("the foreign program (id %s) was replaced or detached: now %q", id, got)
			}
			// It still works: UDP to 7777 is dropped before the stack (no
			// port unreachable comes back), the rest passes.
			var mode loader.Mode
			testbed.Do(tb.TargetNS(), func() (err error) { mode, err = loader.AttachedMode(testbed.TargetIf); return err })
			if mode != loader.ModeGeneric {
				t.Fatalf("foreign program's mode %q, want generic", mode)
			}
			before, err := testbed.SNMP(tb.TargetNS(), "Udp", "NoPorts")
			if err != nil {
				t.Fatal(err)
			}
			sendFrames(t, tb, udpTo7777(20))
			time.Sleep(100 * time.Millisecond)
			after, err := testbed.SNMP(tb.TargetNS(), "Udp", "NoPorts")
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Fatalf("%d UDP datagrams to 7777 reached the stack: the foreign program stopped dropping", after-before)
			}
		})
	}
}

// TestCaptureBesideCapture: two captures on one interface, in each XDP
// mode: the first holds XDP, the second takes TC ingress after it; both
// write every match, byte for byte the same frames.
func TestCaptureBesideCapture(t *testing.T) {
	requireTools(t, "tshark")
	for _, mode := range []string{"generic", "native"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tb := upTestbed(t, testbed.Config{})
			dir := t.TempDir()
			var caps []*bgCapture
			for i := range 2 {
				caps = append(caps, startBg(t, fmt.Sprint("capture ", i), tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf,
					"--mode", mode, "-Q", "in", "-w", filepath.Join(dir, fmt.Sprint(i, ".pcapng")), "--duration", "30s", "udp"))
			}
			sendFrames(t, tb, knownTraffic())
			time.Sleep(300 * time.Millisecond)
			var files [][]capturedFrame
			for i, c := range caps {
				summary := c.stop(t)
				f := readCaptureFile(t, filepath.Join(dir, fmt.Sprint(i, ".pcapng")))
				if len(f) != 500 {
					t.Fatalf("capture %d wrote %d packets, want the 500 UDP frames\n%s", i, len(f), summary)
				}
				files = append(files, f)
			}
			if a, b := sameFrames(files[0], files[1]); a+b != 0 {
				t.Fatalf("%d frames only the first wrote, %d only the second", a, b)
			}
		})
	}
}
