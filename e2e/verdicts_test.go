package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/testbed"
)

// TestCaptureForeignVerdicts (issue 19, parts 3 and 6): beside someone
// else's XDP program that drops UDP to port 7777, a capture reports how
// many packets that program dropped during the capture, from the driver's
// counters: in native mode veth counts them, and the summary,
// --stats-json, the pcapng statistics block and /metrics give exactly the
// number sent to 7777 while the file holds every other UDP frame; in
// generic mode nothing counts them, and every output says so instead of
// printing 0. Three captures at once: root, uid 65534 with CAP_BPF and
// CAP_NET_ADMIN only (the ethtool statistics ioctl is open to any user),
// and root with --rx pcap.
func TestCaptureForeignVerdicts(t *testing.T) {
	requireTools(t, "tshark")
	obj := foreignXDP(t)
	tb := upTestbed(t, testbed.Config{})
	const toDrop = 37 // UDP to 7777; knownTraffic adds 500 UDP the program passes and 100 TCP
	for _, tc := range []struct {
		name           string
		attach, detach []string
		counted        bool
	}{
		{"ip link native", []string{"ip", "link", "set", "dev", testbed.TargetIf, "xdpdrv", "obj", obj, "sec", "xdp"},
			[]string{"ip", "link", "set", "dev", testbed.TargetIf, "xdpdrv", "off"}, true},
		{"xdp-loader native", []string{"xdp-loader", "load", "-m", "native", testbed.TargetIf, obj},
			[]string{"xdp-loader", "unload", testbed.TargetIf, "--all"}, true},
		{"ip link generic", []string{"ip", "link", "set", "dev", testbed.TargetIf, "xdpgeneric", "obj", obj, "sec", "xdp"},
			[]string{"ip", "link", "set", "dev", testbed.TargetIf, "xdpgeneric", "off"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.attach[0])
			ns := tb.TargetNS()
			inNS := func(argv []string) *exec.Cmd {
				return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
			}
			if out, err := inNS(tc.attach).CombinedOutput(); err != nil {
				t.Fatalf("attach the foreign program (%s): %v\n%s", tc.attach, err, out)
			}
			defer inNS(tc.detach).Run()
			id := attachedXDPID(t, tb)
			dir := nobodyDir(t)
			const metricsAddr = "127.0.0.1:9491"
			var caps []*bgCapture
			for i := range 3 {
				argv := []string{binary, "capture", "-i", testbed.TargetIf, "-Q", "in", "-w", filepath.Join(dir, fmt.Sprint(i, ".pcapng")),
					"--stats-json", filepath.Join(dir, fmt.Sprint(i, ".json")), "--duration", "30s", "udp"}
				switch i {
				case 1:
					argv = append(asNobody("bpf", "net_admin"), append(argv, "--metrics-addr", metricsAddr)...)
				case 2: // libpcap's socket too sees only what the program passes
					argv = append(argv, "--rx", "pcap")
				}
				caps = append(caps, startBg(t, fmt.Sprint("capture ", i), ns, argv...))
			}
			sendFrames(t, tb, append(udpTo7777(toDrop), knownTraffic()...))
			time.Sleep(300 * time.Millisecond)
			metrics := scrapeIn(t, ns, metricsAddr)

			dropSeries := regexp.MustCompile(`(?m)^xdpscan_foreign_xdp_packets_total\{interface="xs-tgt",verdict="drop"\} (\d+)$`)
			counted := fmt.Sprintf(`xdpscan_foreign_xdp_verdicts_counted{driver="veth",interface="xs-tgt",xdp_mode="%s"} %d`,
				map[bool]string{true: "native", false: "generic"}[tc.counted], map[bool]int{true: 1, false: 0}[tc.counted])
			m := dropSeries.FindStringSubmatch(metrics)
			switch {
			case !strings.Contains(metrics, counted):
				t.Errorf("/metrics lacks %s:\n%s", counted, grepLines(metrics, "foreign"))
			case tc.counted && (m == nil || m[1] != fmt.Sprint(toDrop)):
				t.Errorf("/metrics drop series %v, want %d:\n%s", m, toDrop, grepLines(metrics, "foreign"))
			case !tc.counted && strings.Contains(metrics, "xdpscan_foreign_xdp_packets_total{"):
				t.Errorf("/metrics has verdict series though nothing counts them:\n%s", grepLines(metrics, "foreign"))
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
				if fmt.Sprint(a.ProgramID) != id || a.Interface != testbed.TargetIf || a.Driver != "veth" {
					t.Errorf("capture %d: xdp_ahead %+v, want program %s on %s, driver veth", i, a, id, testbed.TargetIf)
				}
				isb := isbComment(t, filepath.Join(dir, fmt.Sprint(i, ".pcapng")))
				if tc.counted {
					line := fmt.Sprintf("%d packets dropped by the XDP program ahead (id %s", toDrop, id)
					if a.Drop == nil || *a.Drop != toDrop || a.TX == nil || *a.TX != 0 || a.Redirect == nil || *a.Redirect != 0 ||
						!strings.Contains(a.Source, "ethtool -S of driver veth (rx_queue_0_xdp_drops") || a.NotCounted != "" {
						t.Errorf("capture %d: xdp_ahead %+v, want drop %d, tx 0, redirect 0 from veth's rx_queue_N_xdp_* counters\n%s", i, a, toDrop, b)
					}
					if !strings.Contains(summary, line) || !strings.Contains(summary, "(xdp_drop), 0 sent back (xdp_tx), 0 redirected (xdp_redirect)") {
						t.Errorf("capture %d summary lacks %q...:\n%s", i, line, summary)
					}
					if want := fmt.Sprintf("(native mode): drop %d, tx 0, redirect 0, from ethtool -S of driver veth", toDrop); !strings.Contains(isb, want) {
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
