package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/bench"
	"github.com/xdpscan/xdpscan/testbed"
)

// BenchmarkCaptureFloodScraped: a count-only capture with --metrics-addr
// on the target's interface, a 60-byte UDP flood from the scanner side;
// floods with /metrics scraped 10 times a second alternate with floods
// without, and the flood rates (medians) are compared: a scrape reads the
// per-CPU maps once and nothing is done per packet, so the rate must not
// change beyond the flood's own noise.
//
//	go test ./e2e -run '^$' -bench CaptureFloodScraped -benchtime 1x
func BenchmarkCaptureFloodScraped(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: namespaces and XDP")
	}
	cfg := testbed.Config{Name: "mtbench"}
	tb, err := testbed.Up(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Down()
	dir := b.TempDir()
	const addr = "127.0.0.1:9477"
	capStats := filepath.Join(dir, "capture.json")
	capCmd := exec.Command("ip", "netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "--count-only",
		"--metrics-addr", addr, "--stats-json", capStats, "udp")
	capCmd.Stderr = io.Discard
	if err := capCmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer capCmd.Process.Kill()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (c net.Conn, err error) {
			derr := testbed.Do(tb.TargetNS(), func() error { c, err = (&net.Dialer{}).DialContext(ctx, network, a); return err })
			if err == nil {
				err = derr
			}
			return c, err
		}}}
	defer client.CloseIdleConnections()
	scrape := func() error {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && !strings.Contains(string(body), "xdpscan_packets_matched_total") {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for deadline := time.Now().Add(20 * time.Second); scrape() != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the capture's /metrics never answered")
		}
	}
	const perFlood = 400_000
	flood := func() float64 {
		out, err := exec.Command("ip", "netns", "exec", tb.ScanNS(), binary, "bench", "flood", "--gen", "socket", "-i", testbed.ScanIf,
			"--dst", "198.18.0.9", "--count", "400000").Output()
		if err != nil {
			b.Fatalf("flood: %v", err)
		}
		var r bench.FloodResult
		if err := json.Unmarshal(out, &r); err != nil || r.Sent != perFlood {
			b.Fatalf("flood result %s: %v", out, err)
		}
		return r.PPS
	}
	var plain, scraped []float64
	scrapes := 0
	b.ResetTimer()
	for range b.N {
		for round := range 10 { // interleaved: the VM's rate drifts over seconds
			if round%2 == 0 {
				plain = append(plain, flood())
				continue
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(100 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if scrape() == nil {
							scrapes++
						}
					}
				}
			}()
			scraped = append(scraped, flood())
			close(stop)
			wg.Wait()
		}
	}
	b.StopTimer()
	capCmd.Process.Signal(syscall.SIGINT)
	capCmd.Wait()
	var st struct {
		Matched  uint64 `json:"matched"`
		RingLost uint64 `json:"ring_lost"`
	}
	if bs, err := os.ReadFile(capStats); err == nil {
		json.Unmarshal(bs, &st)
	}
	if want := uint64(len(plain)+len(scraped)) * perFlood; st.Matched < want {
		b.Errorf("capture matched %d of the %d flooded", st.Matched, want)
	}
	mp, ms := median(plain), median(scraped)
	b.ReportMetric(mp, "pps-plain")
	b.ReportMetric(ms, "pps-scraped")
	b.ReportMetric(ms/mp, "ratio")
	b.ReportMetric(float64(scrapes), "scrapes")
	b.Logf("flood pps without scrapes %v", plain)
	b.Logf("flood pps with /metrics 10/s %v (%d scrapes)", scraped, scrapes)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
