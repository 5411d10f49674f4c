package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/testbed"
)

// TestCaptureForeignVerdicts (issue 19, parts 3 and 6): beside someone
// else's XDP program, a capture reports what that program did with the
// packets it kept from the capture, from the driver's counters. In native
// mode veth counts them: with testdata/xdp_drop7777.c the summary,
// --stats-json, the pcapng statistics block and /metrics give exactly the
// number sent to port 7777, and the file holds every other UDP frame; with
// testdata/xdp_verdicts.c (7777 dropped, 7778 sent back, 7779 redirected)
// each verdict's count is the number sent to its port, or, when the
// scanner's end has no NAPI to take XDP frames, the XDP_TX frames are
// counted as errors and the failed redirects in the NIC stage
// (rx_dropped). In generic mode nothing counts them, and every output
// says so instead of printing 0. Three captures at once, in native and
// generic mode: root, uid 65534 with CAP_BPF and CAP_NET_ADMIN only (the
// ethtool statistics ioctl is open to any user), and root with --rx pcap;
// the other cases run the unprivileged one.
func TestCaptureForeignVerdicts(t *testing.T) {
	requireTools(t, "tshark")
	drop7777 := foreignXDP(t)
	verdicts := compileTestXDP(t, "testdata/xdp_verdicts.c")
	tb := upTestbed(t, testbed.Config{})
	const toDrop, toTX, toRedirect = 37, 11, 5
	// Attach and detach commands.
	ipLink := func(mode, obj string) [2][]string {
		return [2][]string{{"ip", "link", "set", "dev", testbed.TargetIf, mode, "obj", obj, "sec", "xdp"},
			{"ip", "link", "set", "dev", testbed.TargetIf, mode, "off"}}
	}
	type counts struct{ drop, tx, redirect, txErrors uint64 }
	for _, tc := range []struct {
		name       string
		attach     [2][]string
		frames     [][]byte // besides knownTraffic, whose 500 UDP frames pass
		scanNAPI   bool     // GRO on the scanner's end: it takes XDP frames (XDP_TX, redirect)
		want       *counts  // nil: not counted
		nicDropped uint64
		oneCapture bool // only the unprivileged one (the others' paths are the same)
	}{
		{name: "ip link native", attach: ipLink("xdpdrv", drop7777), frames: udpTo7777(toDrop), want: &counts{drop: toDrop}},
		{name: "xdp-loader native", attach: [2][]string{{"xdp-loader", "load", "-m", "native", testbed.TargetIf, drop7777},
			{"xdp-loader", "unload", testbed.TargetIf, "--all"}}, frames: udpTo7777(toDrop), want: &counts{drop: toDrop}, oneCapture: true},
		{name: "ip link generic", attach: ipLink("xdpgeneric", drop7777), frames: udpTo7777(toDrop)},
		{name: "every verdict, native", attach: ipLink("xdpdrv", verdicts), frames: verdictFrames(toDrop, toTX, toRedirect), scanNAPI: true,
			want: &counts{drop: toDrop, tx: toTX, redirect: toRedirect}, oneCapture: true},
		{name: "every verdict, native, the peer without NAPI", attach: ipLink("xdpdrv", verdicts), frames: verdictFrames(toDrop, toTX, toRedirect),
			want: &counts{drop: toDrop, txErrors: toTX}, nicDropped: toRedirect, oneCapture: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.attach[0][0])
			ns := tb.TargetNS()
			inNS := func(ns string, argv ...string) *exec.Cmd {
				return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
			}
			if tc.scanNAPI {
				if out, err := inNS(tb.ScanNS(), "ethtool", "-K", testbed.ScanIf, "gro", "on").CombinedOutput(); err != nil {
					t.Fatalf("ethtool -K %s gro on: %v\n%s", testbed.ScanIf, err, out)
				}
				defer inNS(tb.ScanNS(), "ethtool", "-K", testbed.ScanIf, "gro", "off").Run()
			}
			if out, err := inNS(ns, tc.attach[0]...).CombinedOutput(); err != nil {
				t.Fatalf("attach the foreign program (%s): %v\n%s", tc.attach[0], err, out)
			}
			defer inNS(ns, tc.attach[1]...).Run()
			id := attachedXDPID(t, tb)
			dir := nobodyDir(t)
			const metricsAddr = "127.0.0.1:9491"
			caps := map[int]*bgCapture{}
			for i := range 3 {
				if tc.oneCapture && i != 1 {
					continue
				}
				argv := []string{binary, "capture", "-i", testbed.TargetIf, "-Q", "in", "-w", filepath.Join(dir, fmt.Sprint(i, ".pcapng")),
					"--stats-json", filepath.Join(dir, fmt.Sprint(i, ".json")), "--duration", "30s", "udp"}
				switch i {
				case 1:
					argv = append(asNobody("bpf", "net_admin"), append(argv, "--metrics-addr", metricsAddr)...)
				case 2: // libpcap's socket too sees only what the program passes
					argv = append(argv, "--rx", "pcap")
				}
				caps[i] = startBg(t, fmt.Sprint("capture ", i), ns, argv...)
			}
			sendFrames(t, tb, append(tc.frames, knownTraffic()...))
			time.Sleep(300 * time.Millisecond)
			metrics := scrapeIn(t, ns, metricsAddr)

			mode := map[bool]string{true: "native", false: "generic"}[tc.want != nil]
			counted := fmt.Sprintf(`xdpscan_foreign_xdp_verdicts_counted{driver="veth",interface="xs-tgt",xdp_mode="%s"} %d`,
				mode, map[bool]int{true: 1, false: 0}[tc.want != nil])
			if !strings.Contains(metrics, counted) {
				t.Errorf("/metrics lacks %s:\n%s", counted, grepLines(metrics, "foreign"))
			}
			if tc.want == nil && strings.Contains(metrics, "xdpscan_foreign_xdp_packets_total{") {
				t.Errorf("/metrics has verdict series though nothing counts them:\n%s", grepLines(metrics, "foreign"))
			}
			if w := tc.want; w != nil {
				for verdict, n := range map[string]uint64{"drop": w.drop, "tx": w.tx, "redirect": w.redirect, "tx_error": w.txErrors} {
					series := fmt.Sprintf(`xdpscan_foreign_xdp_packets_total{interface="xs-tgt",verdict="%s"} %d`, verdict, n)
					if !strings.Contains(metrics, series+"\n") {
						t.Errorf("/metrics lacks %s:\n%s", series, grepLines(metrics, "foreign"))
					}
				}
			}

			for i, c := range caps {
				summary := c.stop(t)
				if n := tsharkCount(t, filepath.Join(dir, fmt.Sprint(i, ".pcapng"))); n != 500 {
					t.Fatalf("capture %d wrote %d packets, want the 500 UDP frames the program passed\n%s", i, n, summary)
				}
				var st capture.Stats
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i, ".json")))
				if err == nil {
					err = json.Unmarshal(b, &st)
				}
				if err != nil || len(st.Loss.XDPAhead) != 1 {
					t.Fatalf("capture %d --stats-json: %v, xdp_ahead %+v\n%s", i, err, st.Loss.XDPAhead, b)
				}
				a := st.Loss.XDPAhead[0]
				if fmt.Sprint(a.ProgramID) != id || a.Interface != testbed.TargetIf || a.Driver != "veth" || a.XDPMode != mode {
					t.Errorf("capture %d: xdp_ahead %+v, want program %s on %s, driver veth, %s mode", i, a, id, testbed.TargetIf, mode)
				}
				if st.Loss.NICRxDropped != tc.nicDropped {
					t.Errorf("capture %d: loss.nic_rx_dropped %d, want %d (failed redirects)", i, st.Loss.NICRxDropped, tc.nicDropped)
				}
				isb := isbComment(t, filepath.Join(dir, fmt.Sprint(i, ".pcapng")))
				if w := tc.want; w != nil {
					got := func(p *uint64) string {
						if p == nil {
							return "null"
						}
						return fmt.Sprint(*p)
					}
					if g, want := []string{got(a.Drop), got(a.TX), got(a.Redirect), got(a.TXErrors)},
						[]string{fmt.Sprint(w.drop), fmt.Sprint(w.tx), fmt.Sprint(w.redirect), fmt.Sprint(w.txErrors)}; fmt.Sprint(g) != fmt.Sprint(want) ||
						!strings.Contains(a.Source, "ethtool -S of driver veth (rx_queue_0_xdp_drops") || a.NotCounted != "" {
						t.Errorf("capture %d: xdp_ahead drop, tx, redirect, tx_errors %v, want %v from veth's rx_queue_N_xdp_* counters\n%s", i, g, want, b)
					}
					line := fmt.Sprintf("%d packets dropped by the XDP program ahead (id %s", w.drop, id)
					rest := fmt.Sprintf("(xdp_drop), %d sent back (xdp_tx), %d redirected (xdp_redirect), %d could not be sent back (xdp_tx_errors)", w.tx, w.redirect, w.txErrors)
					if !strings.Contains(summary, line) || !strings.Contains(summary, rest) {
						t.Errorf("capture %d summary lacks %q ... %q:\n%s", i, line, rest, summary)
					}
					if want := fmt.Sprintf("(native mode): drop %d, tx %d, redirect %d, from ethtool -S of driver veth", w.drop, w.tx, w.redirect); !strings.Contains(isb, want) {
						t.Errorf("capture %d: statistics block comment %q lacks %q", i, isb, want)
					}
					continue
				}
				if a.Drop != nil || a.TX != nil || a.Redirect != nil || !strings.Contains(a.NotCounted, "generic (skb) mode") {
					t.Errorf("capture %d: xdp_ahead %+v, want null verdicts and the reason\n%s", i, a, b)
				}
				if !strings.Contains(summary, "by the XDP program ahead (id "+id) || !strings.Contains(summary, "not counted (the program runs in generic (skb) mode") ||
					strings.Contains(summary, "0 packets dropped by the XDP program") {
					t.Errorf("capture %d summary does not say generic mode counts no verdicts:\n%s", i, summary)
				}
				if !strings.Contains(isb, "(generic mode): unknown, the program runs in generic (skb) mode") {
					t.Errorf("capture %d: statistics block comment %q does not say the verdicts are unknown", i, isb)
				}
			}
		})
	}
}

// compileTestXDP compiles a testdata XDP program with clang and returns
// the object's path.
func compileTestXDP(t *testing.T, src string) string {
	t.Helper()
	requireTools(t, "clang-19", "gcc")
	obj := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c")+".o")
	out, err := exec.Command("clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/"+gccTriple(t),
		"-c", src, "-o", obj).CombinedOutput()
	if err != nil {
		t.Fatalf("clang %s: %v\n%s", src, err, out)
	}
	return obj
}

// verdictFrames are UDP frames for testdata/xdp_verdicts.c: drop to port
// 7777, tx to 7778, redirect to 7779.
func verdictFrames(drop, tx, redirect int) [][]byte {
	out := udpTo7777(drop)
	for _, p := range []struct {
		port uint16
		n    int
	}{{7778, tx}, {7779, redirect}} {
		for i := range p.n {
			out = append(out, testpkt.Build(testpkt.Frame{SrcMAC: testbed.ScanMAC, DstMAC: testbed.TargetMAC, Src: testbed.ScanIP,
				Dst: netip.AddrFrom4([4]byte{198, 18, 7, byte(i)}), L4: &layers.UDP{SrcPort: 33000, DstPort: layers.UDPPort(p.port)}, Payload: make([]byte, 18)}))
		}
	}
	return out
}

// scrapeIn reads http://addr/metrics from inside namespace ns.
func scrapeIn(t *testing.T, ns, addr string) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (c net.Conn, err error) {
			derr := testbed.Do(ns, func() error { c, err = (&net.Dialer{}).DialContext(ctx, network, a); return err })
			if err == nil {
				err = derr
			}
			return c, err
		}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s in %s: %v", addr, ns, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// isbComment is the comment of a pcapng file's interface statistics block.
func isbComment(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var comment string
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{StatisticsCallback: func(_ int, s pcapgo.NgInterfaceStatistics) { comment = s.Comment }})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return comment
		}
	}
}
