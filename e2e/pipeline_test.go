package e2e

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/ringbuf"
	"github.com/xdpscan/xdpscan/testbed"
)

// sendSYNs sends one SYN per target from the scanner namespace, each with
// the probe cookie as its sequence number.
func sendSYNs(t *testing.T, tb *testbed.Testbed, key probe.CookieKey, targets []netip.AddrPort, sport uint16) {
	t.Helper()
	var frames [][]byte
	for _, tgt := range targets {
		c := key.Cookie4(testbed.ScanIP.As4(), tgt.Addr().As4(), 6, sport, tgt.Port())
		frames = append(frames, testpkt.Build(testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: testbed.TargetMAC,
			Src: testbed.ScanIP, Dst: tgt.Addr(), L4: testpkt.TCP(sport, tgt.Port(), c, 0, "S")}))
	}
	sendFrames(t, tb, frames)
}

func TestPipelineOnVeth(t *testing.T) {
	for _, mode := range []loader.Mode{loader.ModeNative, loader.ModeGeneric} {
		t.Run(string(mode), func(t *testing.T) {
			tb := upTestbed(t, testbed.Config{})
			key, err := probe.NewCookieKey()
			if err != nil {
				t.Fatal(err)
			}
			prog, err := loader.LoadScan(loader.ScanConfig{SourceIPv4: testbed.ScanIP, SourcePortLo: 40000, SourcePortHi: 40255,
				CookieKey: key, RingWakeupBytes: 4096})
			if err != nil {
				t.Fatal(err)
			}
			defer prog.Close()
			var att *loader.Attachment
			if err := testbed.Do(tb.ScanNS(), func() (err error) {
				att, err = loader.Attach(prog.Program(), testbed.ScanIf, mode)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if att.Mode != mode {
				t.Fatalf("kernel reports %s mode, asked for %s", att.Mode, mode)
			}
			rstsBefore, err := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
			if err != nil {
				t.Fatal(err)
			}

			open := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), 80)
			closed := netip.AddrPortFrom(netip.MustParseAddr("198.18.3.2"), 81)
			filtered := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.250"), 80)
			sendSYNs(t, tb, key, []netip.AddrPort{open, closed, filtered}, 40007)

			consumer, err := ringbuf.New[bpf.ScanScanEvent](prog.Events(), ringbuf.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer consumer.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			got := map[netip.AddrPort]uint8{}
			go func() {
				// The target retransmits SYN-ACKs after 1s: wait past that to
				// see the in-kernel dedup at work.
				time.Sleep(1500 * time.Millisecond)
				cancel()
			}()
			if err := consumer.Run(ctx, func(batch []bpf.ScanScanEvent) {
				for _, e := range batch {
					ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.Addr[:4])), e.Port)
					if _, dup := got[ap]; dup {
						t.Errorf("%s reported twice", ap)
					}
					got[ap] = e.Kind
					if e.LocalPort != 40007 || e.Ttl != 64 {
						t.Errorf("event %+v: want local port 40007, ttl 64", e)
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
			want := map[netip.AddrPort]uint8{open: 1, closed: 2}
			if len(got) != len(want) || got[open] != 1 || got[closed] != 2 {
				t.Fatalf("events %v, want %v (1 open, 2 closed; none for the filtered %s)", got, want, filtered)
			}

			c, err := prog.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if c.Matched < 2 || c.Dropped != c.Matched || c.RingLost != 0 || c.BadCookie != 0 {
				t.Fatalf("counters %+v: want >= 2 matched, all dropped, none lost", c)
			}
			if c.Duplicates == 0 {
				t.Error("no duplicate counted, yet the target retransmits its SYN-ACK after 1s")
			}
			rstsAfter, err := testbed.SNMP(tb.ScanNS(), "Tcp", "OutRsts")
			if err != nil {
				t.Fatal(err)
			}
			if rstsAfter != rstsBefore {
				t.Fatalf("scanner kernel sent %d RSTs: XDP did not consume the replies", rstsAfter-rstsBefore)
			}
			if n, _ := tb.FilteredDrops(); n != 1 {
				t.Errorf("target dropped %d probes to filtered addresses, want 1", n)
			}

			if err := att.Close(); err != nil {
				t.Fatal(err)
			}
			assertDetached(t, tb)
		})
	}
}

func attachedMode(t *testing.T, tb *testbed.Testbed) loader.Mode {
	t.Helper()
	var m loader.Mode
	if err := testbed.Do(tb.ScanNS(), func() (err error) {
		m, err = loader.AttachedMode(testbed.ScanIf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func assertDetached(t *testing.T, tb *testbed.Testbed) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for attachedMode(t, tb) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("an XDP program is still attached to %s", testbed.ScanIf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGKILLLeavesNothingAttached kills a running xdpscan with SIGKILL:
// the bpf_link must detach by itself.
func TestSIGKILLLeavesNothingAttached(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	cmd := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "monitor", "-i", testbed.ScanIf, "--duration", "30s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for attachedMode(t, tb) == "" {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("xdpscan monitor never attached")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("xdpscan ended with %v, not by SIGKILL", err)
	}
	assertDetached(t, tb)
}

// TestAttachErrors checks the messages a user sees for the usual mistakes.
func TestAttachErrors(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no such interface", []string{"monitor", "-i", "eth9", "--duration", "1s"}, []string{"monitor: interface eth9: no such interface; see `ip link`"}},
		{"bad mode", []string{"monitor", "-i", testbed.ScanIf, "--mode", "turbo"}, []string{`unknown XDP mode "turbo"`}},
		{"missing interface", []string{"monitor"}, []string{"-i IFACE is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("ip", append([]string{"netns", "exec", tb.ScanNS(), binary}, tc.args...)...).CombinedOutput()
			if err == nil {
				t.Fatalf("succeeded; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
		})
	}

	// Another program already on the interface: say so, never replace it.
	holder := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "monitor", "-i", testbed.ScanIf, "--duration", "20s")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	for attachedMode(t, tb) == "" {
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "monitor", "-i", testbed.ScanIf, "--duration", "1s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another XDP program is already attached") {
		t.Fatalf("second attach: err %v, output %q; want the 'already attached' message", err, out)
	}
}
