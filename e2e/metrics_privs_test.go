package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/internal/privs"
	"github.com/xdpscan/xdpscan/testbed"
)

// TestUnprivilegedMonitorExporter: monitor as the systemd unit runs it,
// uid 65534 with CAP_BPF and CAP_NET_ADMIN only (ambient), exporting two
// interfaces: /metrics answers only once every thread has dropped every
// capability, and counts the pings on each interface.
func TestUnprivilegedMonitorExporter(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const addr = "127.0.0.1:9479"
	args := append([]string{"netns", "exec", tb.ScanNS()}, asNobody("bpf", "net_admin")...)
	args = append(args, binary, "monitor", "-i", testbed.ScanIf+",lo", "--mode", "generic", "--metrics-addr", addr, "--duration", "20s")
	cmd := exec.Command("ip", args...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (c net.Conn, err error) {
			derr := testbed.Do(tb.ScanNS(), func() error { c, err = (&net.Dialer{}).DialContext(ctx, network, a); return err })
			if err == nil {
				err = derr
			}
			return c, err
		}}}
	defer client.CloseIdleConnections()
	scrape := func() (string, error) {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	var body string
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if body, err = scrape(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never answered: %v\n%s", err, stderr.String())
		}
	}
	// It answered: by then no thread holds a capability.
	threads, terr := privs.Threads(cmd.Process.Pid)
	if terr != nil {
		t.Fatal(terr)
	}
	for _, th := range threads {
		if th.Eff != 0 || th.Prm != 0 || th.Amb != 0 || !th.NoNewPrivs {
			t.Errorf("thread %d answered /metrics holding %+v", th.TID, th)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), "ping", "-c", "3", "-i", "0.2", "-W", "1", testbed.TargetIP.String()).CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), "ping", "-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("ping lo: %v\n%s", err, out)
	}
	if body, err = scrape(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`xdpscan_packets_seen_total{direction="in",interface="xs-scan",protocol="icmp",tcp_flags=""} 3`,
		// lo receives both the requests and the replies
		`xdpscan_packets_seen_total{direction="in",interface="lo",protocol="icmp",tcp_flags=""} 4`,
		`xdpscan_nic_dropped_total{counter="rx_dropped",interface="xs-scan"}`,
		`xdpscan_nic_dropped_total{counter="rx_missed_errors",interface="lo"}`,
		`xdpscan_build_info{`,
		`xdpscan_bpf_stats_enabled`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}
