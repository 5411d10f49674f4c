package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/testbed"
)

func gccTriple(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("gcc", "-dumpmachine").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// waitQuiet waits until file (tcpdump -U's output) has not grown for
// quiet, at most 15 s.
func waitQuiet(t *testing.T, file string, quiet time.Duration) {
	t.Helper()
	last, since := int64(-1), time.Now()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != last {
			last, since = fi.Size(), time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
	t.Fatalf("%s still growing after 15 s", file)
}

// tcxIngress is the number of programs on the scanner interface's tcx
// ingress hook.
func tcxIngress(t *testing.T, tb *testbed.Testbed) int {
	t.Helper()
	return tcxPrograms(t, tb.ScanNS(), testbed.ScanIf, ebpf.AttachTCXIngress)
}

// tcxPrograms is the number of programs on iface's tcx hook at (in
// namespace ns).
func tcxPrograms(t *testing.T, ns, iface string, at ebpf.AttachType) int {
	t.Helper()
	var n int
	err := testbed.Do(ns, func() error {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		r, err := link.QueryPrograms(link.QueryOptions{Target: ifc.Index, Attach: at})
		if err != nil {
			return err
		}
		n = len(r.Programs)
		return nil
	})
	if err != nil {
		t.Fatalf("query tcx %s of %s: %v", at, iface, err)
	}
	return n
}

// scanXDPID is the ID of the XDP program on the scanner's interface, or "".
func scanXDPID(t *testing.T, tb *testbed.Testbed) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", tb.ScanNS(), "-d", "link", "show", testbed.ScanIf).Output()
	if err != nil {
		t.Fatal(err)
	}
	for f := strings.Fields(string(out)); len(f) > 2; f = f[1:] {
		if (f[0] == "xdp" || f[0] == "prog/xdp") && f[1] == "id" {
			return f[2]
		}
	}
	return ""
}

// udpToScanner are n UDP frames from the target's side to the scanner's
// port dport.
func udpToScanner(n int, dport uint16) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, testpkt.Build(testpkt.Frame{SrcMAC: testbed.TargetMAC, DstMAC: testbed.ScanMAC,
			Src: netip.AddrFrom4([4]byte{198, 18, 6, byte(i)}), Dst: testbed.ScanIP,
			L4: &layers.UDP{SrcPort: 33000, DstPort: layers.UDPPort(dport)}, Payload: make([]byte, 18)}))
	}
	return out
}

// capturedReplies reads a capture of the scanner's interface: the pairs
// that answered SYN-ACK and RST (with the frames of each), and the UDP
// frames.
func capturedReplies(t *testing.T, path string) (open, closed map[pair]bool, synacks, rsts, udp int) {
	t.Helper()
	open, closed = map[pair]bool{}, map[pair]bool{}
	for _, f := range readPcapFrames(t, path) {
		p := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			continue
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP)
		if p.Layer(layers.LayerTypeUDP) != nil {
			udp++
		}
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		switch {
		case tcp == nil:
		case tcp.SYN && tcp.ACK:
			synacks++
			open[pair{src, uint16(tcp.SrcPort)}] = true
		case tcp.RST:
			rsts++
			closed[pair{src, uint16(tcp.SrcPort)}] = true
		}
	}
	return open, closed, synacks, rsts, udp
}

func samePairs(a, b map[pair]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for p := range a {
		if !b[p] {
			return false
		}
	}
	return true
}

// scanRSTs is the scanner kernel's TCP RST count: it answers any SYN-ACK
// that reaches its stack, so a scan that consumed every reply adds none.
func scanRSTs(t *testing.T, tb *testbed.Testbed) uint64 {
	t.Helper()
	n, err := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestScanBesideCapture: a scan and a capture on the scanner's interface
// at once, both exact, in either order. Capture first: it holds the XDP
// hook and passes everything; the scan takes its replies after it at TC
// ingress, and the capture wrote what tcpdump saw, frame for frame: every
// reply pair of the truth (with the target's retransmissions: after this
// capture's XDP program the frames reach TC without their MAC header, so
// --reset's RST cannot be sent back) and the UDP frames sent meanwhile.
// Scan first: it holds XDP and consumes its replies there, so the capture
// beside it at TC ingress records none of them, and every other packet.
func TestScanBesideCapture(t *testing.T) {
	requireTools(t, "tshark", "tcpdump")
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.8.0/22"
	open, closed := truth(tb.Config, prefix)
	scanArgs := []string{prefix, "-p", scanPortsFlag, "--wait", "1500ms"}

	t.Run("capture first", func(t *testing.T) {
		dir := t.TempDir()
		ours, theirs := filepath.Join(dir, "c.pcapng"), filepath.Join(dir, "tcpdump.pcap")
		// generic: the capture holds the XDP hook (auto on veth would
		// take received packets at TC ingress).
		c := startBg(t, "capture", tb.ScanNS(), binary, "capture", "-i", testbed.ScanIf, "--mode", "generic", "-Q", "in", "-w", ours, "--duration", "30s", "tcp or udp")
		d := startBg(t, "tcpdump", tb.ScanNS(), "tcpdump", "-i", testbed.ScanIf, "-Q", "in", "--immediate-mode", "-B", "32768", "-U", "-w", theirs, "tcp or udp")
		// The scanner kernel's RSTs say nothing here: with no RST of the
		// scan's own, the target retransmits each SYN-ACK at 1 s, 3 s, 7 s,
		// and under load the scan may detach before the second comes.
		// TestScanBesideForeignXDP and the shards' test check them.
		results, st, stderr, err := runScanWrapped(t, tb, dir, nil, append(scanArgs, "--rate", "20000")...)
		if err != nil {
			t.Fatalf("scan beside the capture: %v", err)
		}
		checkAgainstTruth(t, results, open, closed)
		if st.XDPMode != "" || !strings.Contains(st.RxHook, "tc ingress") || st.RingLost != 0 ||
			!strings.Contains(stderr, "already has XDP program xdpscan_capture") || strings.Contains(stderr, "--reset sent no RST") {
			// The capture's generic-mode program is loaded without
			// xdp.frags, after which the skb keeps its MAC header: the
			// scan's RSTs can leave.
			t.Errorf("scan stats %+v, stderr:\n%s\nwant replies taken at TC ingress, with a notice, and RSTs sent", st, stderr)
		}
		sendRaw(t, tb.TargetNS(), testbed.TargetIf, udpToScanner(50, 7777), 1, 20*time.Microsecond)
		// Until the link has been quiet for 1.5 s, which takes in the
		// target's second wave of SYN-ACK retransmissions (3 s after the
		// first, about 1.1 s after the last UDP frame; the scanner's kernel,
		// the scan gone, answers it with RST, which ends them): a wave
		// between the two stops would be in one file only. The time also lets the capture's reader catch up with
		// its ring: under load (make test-busy) it was 315 records of 8423
		// behind, which a SIGINT then left unwritten (and uncounted as lost).
		waitQuiet(t, theirs, 1500*time.Millisecond)
		summary := c.stop(t)
		if out := d.stop(t); !strings.Contains(out, "\n0 packets dropped by kernel") {
			t.Fatalf("tcpdump lost packets, so it is no reference for this run:\n%s", out)
		}
		got, want := readCaptureFile(t, ours), readCaptureFile(t, theirs)
		if a, b := sameFrames(got, want); a != 0 || b != 0 || len(got) == 0 {
			t.Fatalf("%d frames only in xdpscan's file, %d only in tcpdump's (of %d)\n%s", a, b, len(want), summary)
		}
		gotOpen, gotClosed, synacks, rstFrames, udp := capturedReplies(t, ours)
		if !samePairs(gotOpen, open) || !samePairs(gotClosed, closed) || udp != 50 {
			t.Fatalf("capture recorded %d SYN-ACKs from %d pairs, %d RSTs from %d pairs, %d UDP; want the %d open and %d closed pairs, 50 UDP\n%s",
				synacks, len(gotOpen), rstFrames, len(gotClosed), udp, len(open), len(closed), summary)
		}
		if !strings.Contains(summary, fmt.Sprintf("written %d", len(got))) {
			t.Errorf("capture wrote %d packets; summary:\n%s", len(got), summary)
		}
	})

	// Capture first in --mode auto: on veth it takes received packets at
	// TC ingress and leaves XDP free, so the scan takes XDP and consumes
	// its replies before the capture; the capture says so at the end.
	t.Run("capture first, auto mode", func(t *testing.T) {
		dir := t.TempDir()
		c := startBg(t, "capture", tb.ScanNS(), binary, "capture", "-i", testbed.ScanIf, "-Q", "in", "--count-only", "--duration", "30s", "tcp or udp")
		results, st, stderr, err := runScanWrapped(t, tb, dir, nil, append(scanArgs, "--rate", "20000")...)
		if err != nil {
			t.Fatalf("scan after the capture: %v\n%s", err, stderr)
		}
		checkAgainstTruth(t, results, open, closed)
		if st.XDPMode == "" {
			t.Errorf("scan stats %+v: want replies taken at XDP, which the auto-mode capture left free", st)
		}
		// A second scan, a program of its own: the capture names both.
		// It holds XDP for the 800 ms wait at least, the watch looks
		// every 100 ms.
		if _, _, stderr, err := runScanWrapped(t, tb, dir, nil, "198.18.8.0/30", "-p", "80", "--wait", "800ms"); err != nil {
			t.Fatalf("second scan after the capture: %v\n%s", err, stderr)
		}
		sendRaw(t, tb.TargetNS(), testbed.TargetIf, udpToScanner(50, 7777), 1, 20*time.Microsecond)
		time.Sleep(200 * time.Millisecond)
		summary := c.stop(t)
		if !strings.Contains(summary, "attached after the capture began") || !strings.Contains(summary, "tcx ingress (--mode auto") ||
			!regexp.MustCompile(`XDP program ahead \(id \d+( xdpscan_scan)?, then id \d+( xdpscan_scan)?\)`).MatchString(summary) {
			t.Errorf("capture summary does not name the two scans' XDP programs that came ahead of it:\n%s", summary)
		}
	})

	t.Run("scan first", func(t *testing.T) {
		dir := t.TempDir()
		// 5120 probes at 2000/s: it holds XDP for about 4 s.
		var results []ndjsonResult
		var stderr string
		var scanErr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			results, _, stderr, scanErr = runScanWrapped(t, tb, dir, nil, append(scanArgs, "--rate", "2000")...)
		}()
		for deadline := time.Now().Add(10 * time.Second); attachedModeIn(t, tb.ScanNS(), testbed.ScanIf) == ""; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				wg.Wait()
				t.Fatalf("the scan never attached: %v\n%s", scanErr, stderr)
			}
		}
		file := filepath.Join(dir, "c.pcapng")
		c := startBg(t, "capture", tb.ScanNS(), binary, "capture", "-i", testbed.ScanIf, "-Q", "in", "-w", file, "--duration", "30s", "tcp or udp")
		sendRaw(t, tb.TargetNS(), testbed.TargetIf, udpToScanner(50, 7777), 1, 20*time.Microsecond)
		wg.Wait()
		if scanErr != nil {
			t.Fatalf("scan: %v\n%s", scanErr, stderr)
		}
		checkAgainstTruth(t, results, open, closed)
		time.Sleep(100 * time.Millisecond)
		summary := c.stop(t)
		_, _, synacks, rstFrames, udp := capturedReplies(t, file)
		if synacks != 0 || rstFrames != 0 || udp != 50 || !strings.Contains(summary, "after the XDP program already attached") {
			t.Fatalf("capture beside the scan recorded %d SYN-ACKs, %d RSTs, %d UDP: want no reply (the scan's XDP consumed them) and the 50 UDP\n%s",
				synacks, rstFrames, udp, summary)
		}
	})
}

func attachedModeIn(t *testing.T, ns, ifname string) loader.Mode {
	t.Helper()
	var m loader.Mode
	if err := testbed.Do(ns, func() (err error) { m, err = loader.AttachedMode(ifname); return err }); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestScanShardsOnOneInterface: the three shards of one scan run at once
// from one host, on one interface: the first takes the XDP hook, the
// others, started once it holds it, TC ingress after it, each consuming
// only its own replies (each run has a cookie key of its own) and passing
// the others on. The union of their outputs is the truth, no pair twice,
// and the scanner's kernel answered none. The third shard runs as uid
// 65534 with the documented capabilities only.
func TestScanShardsOnOneInterface(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.12.0/22"
	open, closed := truth(tb.Config, prefix)
	dir := nobodyDir(t)
	rsts := scanRSTs(t, tb)
	type out struct {
		results []ndjsonResult
		stderr  string
		err     error
		hook    string
	}
	outs := make([]out, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		var wrap []string
		if i == 2 {
			wrap = asNobody("bpf", "net_admin", "net_raw")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// ~1700 probes a shard at 2000/s: each runs about 2.5 s.
			res, st, stderr, err := runScanWrapped(t, tb, dir, wrap, prefix, "-p", scanPortsFlag, "--rate", "2000", "--wait", "1500ms",
				"--seed", "7", "--shards", "3", "--shard", fmt.Sprint(i))
			outs[i] = out{res, stderr, err, st.XDPMode + st.RxHook}
		}()
		if i == 0 {
			for deadline := time.Now().Add(10 * time.Second); attachedModeIn(t, tb.ScanNS(), testbed.ScanIf) == ""; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					wg.Wait()
					t.Fatalf("shard 0 never attached: %v\n%s", outs[0].err, outs[0].stderr)
				}
			}
		}
	}
	wg.Wait()
	var all []ndjsonResult
	for i, o := range outs {
		if o.err != nil {
			t.Fatalf("shard %d: %v\n%s", i, o.err, o.stderr)
		}
		if beside := strings.Contains(o.hook, "tc ingress"); beside != (i > 0) {
			t.Errorf("shard %d took replies at %q: want XDP for the first, TC ingress beside it for the others", i, o.hook)
		}
		all = append(all, o.results...)
	}
	checkAgainstTruth(t, all, open, closed)
	if got := scanRSTs(t, tb); got != rsts {
		t.Errorf("scanner kernel sent %d RSTs: a reply passed every shard", got-rsts)
	}
	if n := tcxIngress(t, tb); n != 0 || scanXDPID(t, tb) != "" {
		t.Errorf("after the shards: %d tcx programs, XDP %q left attached", n, scanXDPID(t, tb))
	}
}

// TestScanBesideForeignXDP: with someone else's XDP program on the
// scanner's interface (attached by `ip link set ... xdpgeneric obj`, and
// by xdp-loader; and the same program with xdp.frags, after which TC gets
// frames without their MAC header), a scan is exact; that program stays attached, the same
// one, and keeps dropping UDP to port 7777; the scan's TC program is gone
// after it, also when it is stopped by SIGINT, SIGTERM or SIGKILL.
func TestScanBesideForeignXDP(t *testing.T) {
	obj, frags := foreignXDP(t), fragsXDP(t)
	tb := upTestbed(t, testbed.Config{})
	for i, tc := range []struct {
		name           string
		attach, detach []string
		frags          bool // the program has xdp.frags: TC gets frames without their MAC header
	}{
		{"ip link", []string{"ip", "link", "set", "dev", testbed.ScanIf, "xdpgeneric", "obj", obj, "sec", "xdp"},
			[]string{"ip", "link", "set", "dev", testbed.ScanIf, "xdpgeneric", "off"}, false},
		{"xdp-loader", []string{"xdp-loader", "load", "-m", "skb", testbed.ScanIf, obj},
			[]string{"xdp-loader", "unload", testbed.ScanIf, "--all"}, false},
		{"ip link, xdp.frags", []string{"ip", "link", "set", "dev", testbed.ScanIf, "xdpgeneric", "obj", frags, "sec", "xdp.frags"},
			[]string{"ip", "link", "set", "dev", testbed.ScanIf, "xdpgeneric", "off"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.attach[0])
			ns := func(argv []string) *exec.Cmd {
				return exec.Command("ip", append([]string{"netns", "exec", tb.ScanNS()}, argv...)...)
			}
			if out, err := ns(tc.attach).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tc.attach, err, out)
			}
			defer ns(tc.detach).Run()
			id := scanXDPID(t, tb)
			if id == "" {
				t.Fatal("the foreign program is not attached")
			}
			prefix := fmt.Sprintf("198.18.%d.0/22", 16+4*i)
			open, closed := truth(tb.Config, prefix)
			rsts := scanRSTs(t, tb)
			retrans, err := testbed.SNMP(tb.TargetNS(), "Tcp", "RetransSegs")
			if err != nil {
				t.Fatal(err)
			}
			results, st, stderr, err := runScanWrapped(t, tb, t.TempDir(), nil, prefix, "-p", scanPortsFlag, "--rate", "20000", "--wait", "1500ms")
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if tc.frags {
				// No RST can be sent: the target retransmits, and the
				// scanner kernel answers those the scan, detached, no
				// longer takes (TestScanBesideCapture's case).
				if !strings.Contains(stderr, "--reset sent no RST") {
					t.Errorf("no notice that --reset sent no RST:\n%s", stderr)
				}
			} else {
				if got := scanRSTs(t, tb); got != rsts {
					t.Errorf("scanner kernel sent %d RSTs: the scan did not consume every reply", got-rsts)
				}
				// --reset (the default): each SYN-ACK was answered by the
				// scan's RST, redirected to the egress, so no target
				// retransmitted one (it would have after 1 s, within --wait).
				if got, err := testbed.SNMP(tb.TargetNS(), "Tcp", "RetransSegs"); err != nil || got != retrans {
					t.Errorf("target retransmitted %d segments (%v): the RSTs did not reach it", got-retrans, err)
				}
			}
			checkAgainstTruth(t, results, open, closed)
			if !strings.Contains(stderr, "already has XDP program") || !strings.Contains(stderr, "id "+id) || st.RxHook == "" {
				t.Errorf("want a notice naming program id %s and rx_hook set; stats %+v, stderr:\n%s", id, st, stderr)
			}

			// Stopped by a signal while sending: detached all the same (on
			// SIGKILL too: the tcx bpf_link goes with the process).
			for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
				cmd := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "scan", "--allow", "198.18.0.0/15", "--status", "none",
					"-o", "/dev/null", prefix, "-p", scanPortsFlag, "--rate", "1000", "--wait", "200ms")
				var errb lockedBuffer
				cmd.Stderr = &errb
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(10 * time.Second); tcxIngress(t, tb) == 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatalf("the scan never attached at tcx ingress:\n%s", errb.String())
					}
				}
				cmd.Process.Signal(sig)
				cmd.Wait()
				if n := tcxIngress(t, tb); n != 0 {
					t.Fatalf("after %v: %d programs left at tcx ingress\n%s", sig, n, errb.String())
				}
			}

			if got := scanXDPID(t, tb); got != id {
				t.Fatalf("the foreign program (id %s) was replaced or detached: now %q", id, got)
			}
			// It still works: UDP to 7777 never reaches the scanner's
			// stack; to 7778 it does (no listener: NoPorts).
			for _, c := range []struct {
				port uint16
				want uint64
			}{{7777, 0}, {7778, 20}} {
				before, err := testbed.SNMP(tb.ScanNS(), "Udp", "NoPorts")
				if err != nil {
					t.Fatal(err)
				}
				sendRaw(t, tb.TargetNS(), testbed.TargetIf, udpToScanner(20, c.port), 1, 20*time.Microsecond)
				time.Sleep(100 * time.Millisecond)
				after, err := testbed.SNMP(tb.ScanNS(), "Udp", "NoPorts")
				if err != nil {
					t.Fatal(err)
				}
				if after-before != c.want {
					t.Fatalf("%d of 20 UDP datagrams to port %d reached the stack, want %d", after-before, c.port, c.want)
				}
			}
		})
	}
}

// TestScanTCOnBothHooks: the TC scan program attached at TC ingress by
// tcx and by clsact (the hook below Linux 6.6) takes the real SYN-ACKs
// and RSTs the target sends to SYNs carrying its cookie, and leaves
// nothing behind once detached (no tcx program, no clsact qdisc).
func TestScanTCOnBothHooks(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	for i, hook := range []loader.EgressHook{loader.HookTCX, loader.HookClsact} {
		t.Run(string(hook), func(t *testing.T) {
			key, err := probe.NewCookieKey()
			if err != nil {
				t.Fatal(err)
			}
			prog, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: testbed.ScanIP, SourcePortLo: 40000, SourcePortHi: 40255, CookieKey: key})
			if err != nil {
				t.Fatal(err)
			}
			defer prog.Close()
			tc, err := prog.LoadTC()
			if err != nil {
				t.Fatal(err)
			}
			defer tc.Close()
			var att *loader.EgressAttachment
			if err := testbed.Do(tb.ScanNS(), func() (err error) {
				att, err = loader.AttachIngress(tc.Program(), testbed.ScanIf, hook)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			// 198.19.0.1.40001 > 198.18.20.i.80 and .81: Flags [S], seq cookie
			// (a target of its own: the first's half-open connection
			// would answer another SYN of the same tuple with an ACK)
			tgt := netip.AddrFrom4([4]byte{198, 18, 20, byte(1 + i)})
			targets := []netip.AddrPort{netip.AddrPortFrom(tgt, 80), netip.AddrPortFrom(tgt, 81)}
			sendSYNs(t, tb, key, targets, 40001)
			time.Sleep(300 * time.Millisecond)
			c, err := prog.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if c.Matched != 2 || c.TCPSynAck != 1 || c.TCPRst != 1 || c.BadCookie != 0 {
				t.Errorf("counters %+v: want the SYN-ACK from port 80 and the RST from 81 matched", c)
			}
			if err := testbed.Do(tb.ScanNS(), att.Close); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("tc", "-n", tb.ScanNS(), "qdisc", "show", "dev", testbed.ScanIf).CombinedOutput()
			if n := tcxIngress(t, tb); n != 0 || err != nil || strings.Contains(string(out), "clsact") {
				t.Fatalf("after detaching: %d tcx programs; qdiscs %q (%v)", n, out, err)
			}
		})
	}
}

// TestScanBesideAllKindsFromXDP: beside a foreign XDP program, every probe
// kind of both families (SYN, UDP with payloads, echo; IPv4 and IPv6),
// sent from the kernel (--tx xdp: the scan's XDP program runs unattached,
// by BPF_PROG_RUN), is validated at TC ingress: exactly the truth.
func TestScanBesideAllKindsFromXDP(t *testing.T) {
	obj := foreignXDP(t)
	tb := upTestbed(t, testbed.Config{TargetNAPI: true, UDPOpenPorts: []uint16{53, 123, 7}, ProhibitedFrom: 230,
		Range6: testbed.DefaultRange6})
	ns := func(argv ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", tb.ScanNS()}, argv...)...)
	}
	if out, err := ns("ip", "link", "set", "dev", testbed.ScanIf, "xdpgeneric", "obj", obj, "sec", "xdp").CombinedOutput(); err != nil {
		t.Fatalf("attach the foreign program: %v\n%s", err, out)
	}
	defer ns("ip", "link", "set", "dev", testbed.ScanIf, "xdpgeneric", "off").Run()
	const prefix = "198.18.0.0/23"
	const prefix6 = "2001:2::/119"
	probes := []probeKey{{proto: "tcp", port: 22}, {proto: "tcp", port: 9000}, {proto: "udp", port: 53}, {proto: "udp", port: 7},
		{proto: "udp", port: 161}, {proto: "icmp"}}
	want := mixedTruth(tb.Config, prefix, probes)
	for k, v := range mixedTruth(tb.Config, prefix6, probes) {
		want[k] = v
	}
	results, st, err := runScan(t, tb, t.TempDir(), prefix, prefix6, "-p", "22,9000,U:53,U:7,U:161", "--ping", "--tx", "xdp",
		"--rate", "20000", "--wait", "1500ms")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	checkStates(t, results, want)
	if st.TxMode != "xdp" || st.TxErrors != 0 || st.RingLost != 0 || !strings.Contains(st.RxHook, "tc ingress") {
		t.Errorf("stats %+v: want probes sent from XDP, replies taken at TC ingress, no loss", st)
	}
}
