package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// promServer is a real Prometheus (Debian's prometheus package), started
// by the test inside a namespace, listening on that namespace's loopback.
type promServer struct {
	ns     string
	addr   string
	client *http.Client
}

func startPrometheus(t *testing.T, ns string, targets map[string]string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("no prometheus binary (apt-get install prometheus; make deps): %v", err)
	}
	dir := t.TempDir()
	cfg := "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n"
	for job, target := range targets {
		cfg += fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: ['%s']\n", job, target)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &promServer{ns: ns, addr: "127.0.0.1:9090"}
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+p.addr, "--log.level=warn")
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	// Dial inside the namespace: the socket belongs to the namespace it
	// was created in.
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			derr := testbed.Do(ns, func() error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			if err == nil {
				err = derr
			}
			return c, err
		}}}
	t.Cleanup(p.client.CloseIdleConnections)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := p.client.Get("http://" + p.addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus not ready after 30s: %v\n%s", err, b)
		}
	}
}

// query runs an instant query and returns the single value it gives, or
// ok=false for an empty result.
func (p *promServer) query(t *testing.T, q string) (v float64, ok bool) {
	t.Helper()
	resp, err := p.client.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, b)
	}
	switch len(r.Data.Result) {
	case 0:
		return 0, false
	case 1:
	default:
		t.Fatalf("query %s: %d series, want 1: %s", q, len(r.Data.Result), b)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %s: value %q", q, s)
	}
	return v, true
}

// waitScrapes waits until Prometheus has scraped job at least twice more.
func (p *promServer) waitScrapes(t *testing.T, job string) {
	t.Helper()
	q := fmt.Sprintf(`count_over_time(up{job=%q}[1h])`, job)
	start, _ := p.query(t, q)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if n, _ := p.query(t, q); n >= start+2 {
			return
		}
	}
	t.Fatalf("prometheus did not scrape %s twice in 15s", job)
}

// TestPrometheusMetrics: a real Prometheus scrapes a capture (on the
// target's interface, count-only) and a scan (on the scanner's) every
// second. During the scan, which is the bounded flood the capture counts,
// rate(xdpscan_probes_sent_total[5s]) is within 10% of --rate; during and
// after it, xdpscan_packets_matched_total as Prometheus stored it never
// exceeds and finally equals the capture's --stats-json matched count; the
// scan's metrics equal its --stats-json at the end.
func TestPrometheusMetrics(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	const (
		captureAddr = "127.0.0.1:9477"
		scanPort    = "9478"
		rate        = 3000.0
		prefix      = "198.18.64.0/18" // × 2 ports: 32,768 probes, ~11 s at 3000/s
	)
	scanAddr := net.JoinHostPort(testbed.ScanIP.String(), scanPort) // scraped over the link
	prom := startPrometheus(t, tb.TargetNS(), map[string]string{"capture": captureAddr, "scan": scanAddr})

	capStats := filepath.Join(dir, "capture.json")
	capCmd := exec.Command("ip", "netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "--count-only",
		"--metrics-addr", captureAddr, "--stats-json", capStats, "tcp[tcpflags] == tcp-syn and dst net 198.18.0.0/16")
	capLog, _ := os.Create(filepath.Join(dir, "capture.log"))
	defer capLog.Close()
	capCmd.Stdout, capCmd.Stderr = capLog, capLog
	if err := capCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer capCmd.Process.Kill()
	prom.waitScrapes(t, "capture")
	if v, ok := prom.query(t, `up{job="capture"}`); !ok || v != 1 {
		b, _ := os.ReadFile(filepath.Join(dir, "capture.log"))
		t.Fatalf("capture target up=%v %v\n%s", v, ok, b)
	}

	scanStats := filepath.Join(dir, "scan.json")
	scanCmd := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "scan", prefix, "-p", "22,9000", "--allow", "198.18.0.0/15",
		"--rate", fmt.Sprint(rate), "--wait", "3s", "-o", filepath.Join(dir, "scan.ndjson"), "--stats-json", scanStats,
		"--status", "none", "--metrics-addr", scanAddr)
	scanLog, _ := os.Create(filepath.Join(dir, "scan.log"))
	defer scanLog.Close()
	scanCmd.Stdout, scanCmd.Stderr = scanLog, scanLog
	if err := scanCmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanDone := make(chan error, 1)
	go func() { scanDone <- scanCmd.Wait() }()

	// Mid-scan: once half is sent (5.5 s in: the 5 s window holds no
	// scrape from before the first probe), the rate against --rate; all
	// along, the stored matched count never goes down.
	var lastMatched float64
	rateChecked := false
	for running := true; running; {
		select {
		case err := <-scanDone:
			if err != nil {
				b, _ := os.ReadFile(filepath.Join(dir, "scan.log"))
				t.Fatalf("scan: %v\n%s", err, b)
			}
			running = false
			continue
		case <-time.After(500 * time.Millisecond):
		}
		if m, ok := prom.query(t, `xdpscan_packets_matched_total{job="capture",direction="in"}`); ok {
			if m < lastMatched {
				t.Errorf("xdpscan_packets_matched_total went down: %v then %v", lastMatched, m)
			}
			lastMatched = m
		}
		ratio, _ := prom.query(t, `xdpscan_scan_progress_ratio{job="scan"}`)
		if !rateChecked && ratio >= 0.5 && ratio <= 0.9 {
			r, ok := prom.query(t, `rate(xdpscan_probes_sent_total{job="scan"}[5s])`)
			if !ok || math.Abs(r-rate)/rate > 0.10 {
				t.Errorf("rate(xdpscan_probes_sent_total[5s]) = %.0f at %.0f%% (ok %v): want %.0f ± 10%%", r, 100*ratio, ok, rate)
			} else {
				t.Logf("rate(xdpscan_probes_sent_total[5s]) = %.0f/s at %.0f%% of the scan (asked %.0f/s)", r, 100*ratio, rate)
			}
			rateChecked = true
		}
	}
	if !rateChecked {
		t.Error("no scrape saw the scan between 50% and 90%: the rate was not checked")
	}

	// After the flood: two more scrapes, then stop the capture.
	prom.waitScrapes(t, "capture")
	stored, ok := prom.query(t, `xdpscan_packets_matched_total{job="capture",direction="in"}`)
	if !ok {
		t.Fatal("no xdpscan_packets_matched_total stored")
	}
	// The target's answers leave by the TC egress program (-Q inout, the
	// default): a series of their own.
	outSeen, outOK := prom.query(t, `sum(xdpscan_packets_seen_total{job="capture",direction="out"})`)
	capCmd.Process.Signal(syscall.SIGINT)
	if err := capCmd.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "capture.log"))
		t.Fatalf("capture: %v\n%s", err, b)
	}
	var cst capture.Stats
	readJSON(t, capStats, &cst)
	var sst scan.Stats
	readJSON(t, scanStats, &sst)
	if uint64(stored) != cst.Matched || cst.Matched != sst.ProbesSent {
		t.Errorf("xdpscan_packets_matched_total in Prometheus %v, capture --stats-json matched %d, probes sent %d: want all equal",
			stored, cst.Matched, sst.ProbesSent)
	}
	if !outOK || cst.Outbound == nil || outSeen == 0 || uint64(outSeen) > cst.Outbound.Seen {
		t.Errorf(`xdpscan_packets_seen_total{direction="out"} %v (stored: %v), capture --stats-json outbound %+v: want a series, above 0, at most the final count`,
			outSeen, outOK, cst.Outbound)
	}

	// Loss per stage: the ring's figure is the one the summary gives,
	// and the interface's counters were read.
	if cst.Loss.Ring != cst.RingLost || cst.Loss.Writer != cst.WriterLost || cst.Loss.NICUnavailable != "" {
		t.Errorf("capture loss by stage %+v: want ring %d, writer %d, NIC counters read", cst.Loss, cst.RingLost, cst.WriterLost)
	}

	// The scan has exited: its last stored values (max over the run, the
	// counters only grow) against its --stats-json.
	for _, c := range []struct {
		metric string
		want   float64
	}{
		{`xdpscan_probes_sent_total`, float64(sst.ProbesSent)},
		{`xdpscan_replies_total{state="open"}`, float64(sst.Open)},
		{`xdpscan_replies_total{state="closed"}`, float64(sst.Closed)},
		{`xdpscan_replies_total{state="filtered"}`, float64(sst.FilteredICMP)},
		{`xdpscan_replies_total{state="up"}`, float64(sst.Up)},
		{`xdpscan_duplicates_total`, float64(sst.Duplicates)},
		{`xdpscan_invalid_cookie_total`, float64(sst.InvalidCookie)},
		{`xdpscan_tx_errors_total`, float64(sst.TxErrors)},
		{`xdpscan_ring_lost_total`, float64(sst.RingLost)},
		{`xdpscan_scan_progress_ratio`, 1},
	} {
		q := fmt.Sprintf(`max_over_time(%s[5m])`, withJob(c.metric, "scan"))
		if v, ok := prom.query(t, q); !ok || v != c.want {
			t.Errorf("%s = %v (stored: %v): --stats-json says %v", q, v, ok, c.want)
		}
	}
	if sst.Open == 0 || sst.ProbesSent != 32768 {
		t.Errorf("scan stats %+v: want 32768 probes and open ports", sst)
	}
	if v, ok := prom.query(t, `max_over_time(xdpscan_build_info{job="scan"}[5m])`); !ok || v != 1 {
		t.Errorf("xdpscan_build_info: %v %v", v, ok)
	}
}

// withJob adds job="J" to a selector.
func withJob(metric, job string) string {
	if i := len(metric) - 1; metric[i] == '}' {
		return metric[:i] + fmt.Sprintf(`,job=%q}`, job)
	}
	return metric + fmt.Sprintf(`{job=%q}`, job)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
