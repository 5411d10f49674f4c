package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/loader"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSeenSeriesAddUp: the packets_seen_total series partition Packets
// for frames of every kind count_parse knows (the invariants of
// bpf/include/counters.h).
func TestSeenSeriesAddUp(t *testing.T) {
	tests := []struct {
		name string
		c    loader.Counters
	}{
		{"empty", loader.Counters{}},
		{"tcp classes", loader.Counters{Packets: 15, IPv4: 15, TCP: 15, TCPSyn: 1, TCPSynAck: 2, TCPRst: 3, TCPFin: 4, TCPOther: 5}},
		{"every kind", loader.Counters{Packets: 2 + 4 + 20, NonIP: 4, L2Errors: 2, ParseErrors: 2 + 3, IPv4: 13, IPv6: 7,
			UDP: 5, ICMP: 1, ICMPv6: 1, OtherL4: 7, TCP: 3, TCPSyn: 3}},
		// The TC egress program counts without parsing.
		{"unparsed (TC)", loader.Counters{Packets: 9, Bytes: 900, Matched: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum uint64
			for _, s := range SeenSeries(tt.c) {
				sum += s.Value
				if (s.Protocol == "tcp") != (s.TCPFlags != "") {
					t.Errorf("series %+v: tcp_flags only on tcp", s)
				}
			}
			if sum != tt.c.Packets {
				t.Errorf("series add up to %d, want packets %d", sum, tt.c.Packets)
			}
		})
	}
}

// TestCollectorsExposition: the names, labels and values a scrape gives,
// in the exposition format, and lint-clean by Prometheus' own rules.
func TestCollectorsExposition(t *testing.T) {
	c := loader.Counters{Packets: 10, Bytes: 600, IPv4: 10, TCP: 6, TCPSyn: 6, UDP: 4, Matched: 7, RingLost: 1}
	written, lost := uint64(5), uint64(1)
	capc := NewCaptureCollector(Capture{Interface: "xs-tgt", Direction: "in",
		Counters: func() (loader.Counters, error) { return c, nil },
		Written:  func() uint64 { return written }, WriterLost: func() uint64 { return lost }})
	want := `
# HELP xdpscan_packets_matched_total Packets the capture filter accepted.
# TYPE xdpscan_packets_matched_total counter
xdpscan_packets_matched_total{direction="in",interface="xs-tgt"} 7
# HELP xdpscan_packets_written_total Matched packets written to the output.
# TYPE xdpscan_packets_written_total counter
xdpscan_packets_written_total{direction="in",interface="xs-tgt"} 5
# HELP xdpscan_writer_lost_total Matched packets read from the ring but not written (a write error, or past -c).
# TYPE xdpscan_writer_lost_total counter
xdpscan_writer_lost_total{direction="in",interface="xs-tgt"} 1
# HELP xdpscan_bytes_seen_total Bytes of the packets the capture program saw (whole frames).
# TYPE xdpscan_bytes_seen_total counter
xdpscan_bytes_seen_total{direction="in",interface="xs-tgt"} 600
`
	if err := testutil.CollectAndCompare(capc, strings.NewReader(want), "xdpscan_packets_matched_total",
		"xdpscan_packets_written_total", "xdpscan_writer_lost_total", "xdpscan_bytes_seen_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(withLabel(onlyDesc(capc, "packets_seen_total"), "tcp_flags", "syn")); got != 6 {
		t.Errorf("packets_seen_total{protocol=tcp,tcp_flags=syn} = %v, want 6", got)
	}
	scanc := NewScanCollector("xs-scan", func() ScanValues {
		return ScanValues{Sent: 50, Total: 200, Open: 3, Closed: 4, Filtered: 1, Up: 2, Duplicates: 5, InvalidCookie: 6, TxErrors: 7, RingLost: 8}
	})
	want = `
# HELP xdpscan_replies_total Pairs reported, by state (open, closed, filtered: by an ICMP error, up: echo reply).
# TYPE xdpscan_replies_total counter
xdpscan_replies_total{interface="xs-scan",state="closed"} 4
xdpscan_replies_total{interface="xs-scan",state="filtered"} 1
xdpscan_replies_total{interface="xs-scan",state="open"} 3
xdpscan_replies_total{interface="xs-scan",state="up"} 2
# HELP xdpscan_scan_progress_ratio Probes sent over probes to send (0 to 1).
# TYPE xdpscan_scan_progress_ratio gauge
xdpscan_scan_progress_ratio{interface="xs-scan"} 0.25
`
	if err := testutil.CollectAndCompare(scanc, strings.NewReader(want), "xdpscan_replies_total", "xdpscan_scan_progress_ratio"); err != nil {
		t.Error(err)
	}
	for name, col := range map[string]prometheus.Collector{"capture": capc, "scan": scanc, "build": newBuildInfo()} {
		problems, err := testutil.CollectAndLint(col)
		if err != nil || len(problems) > 0 {
			t.Errorf("%s: lint: %v %v", name, err, problems)
		}
	}
}

// withLabel is col's metrics with label name = value.
func withLabel(col prometheus.Collector, name, value string) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		m := make(chan prometheus.Metric, 64)
		go func() { col.Collect(m); close(m) }()
		for x := range m {
			var pb dto.Metric
			if x.Write(&pb) != nil {
				continue
			}
			for _, l := range pb.Label {
				if l.GetName() == name && l.GetValue() == value {
					ch <- x
				}
			}
		}
	})
}

// TestServerAnswersOnlyAfterServe: the port is bound at Listen (a second
// Listen on it fails at once), and a scrape waits until Serve, which the
// commands call after dropping privileges.
func TestServerAnswersOnlyAfterServe(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Listen(s.Addr().String()); err == nil {
		t.Fatal("a second Listen on a bound port succeeded")
	}
	got := make(chan string, 1)
	go func() {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + s.Addr().String() + "/metrics")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	select {
	case g := <-got:
		t.Fatalf("answered before Serve: %.80q", g)
	case <-time.After(300 * time.Millisecond):
	}
	s.Serve()
	if g := <-got; !strings.Contains(g, "xdpscan_build_info{") {
		t.Errorf("after Serve: %.200q, want xdpscan_build_info", g)
	}
	for _, bad := range []string{"9477", "localhost", "127.0.0.1:99999"} {
		if _, err := Listen(bad); err == nil {
			t.Errorf("Listen(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), "--metrics-addr") {
			t.Errorf("Listen(%q): %v: want the flag named", bad, err)
		}
	}
}

// TestProgramStats: the enabled gauge follows the sysctl; with the
// kernel's statistics on (BPF_ENABLE_STATS, held only for this test), a
// program run 10 times reports 10 runs and some run time.
func TestProgramStats(t *testing.T) {
	bpftest.Require(t)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.LoadImm(asm.R0, 2, asm.DWord), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	col := NewProgramCollector(Program{Name: "pass", Interface: "lo", Program: prog})
	want := 0.0
	if StatsEnabled() {
		want = 1
	}
	if v := testutil.ToFloat64(onlyDesc(col, "bpf_stats_enabled")); v != want {
		t.Errorf("xdpscan_bpf_stats_enabled = %v, the sysctl says %v", v, want)
	}
	closer, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Fatalf("BPF_ENABLE_STATS: %v", err)
	}
	defer closer.Close()
	frame := make([]byte, 64)
	for range 10 {
		if _, err := prog.Run(&ebpf.RunOptions{Data: frame}); err != nil {
			t.Fatal(err)
		}
	}
	if v := testutil.ToFloat64(onlyDesc(col, "bpf_program_runs_total")); v != 10 {
		t.Errorf("xdpscan_bpf_program_runs_total = %v, want 10", v)
	}
	if v := testutil.ToFloat64(onlyDesc(col, "bpf_program_run_seconds_total")); v <= 0 || v > 1 {
		t.Errorf("xdpscan_bpf_program_run_seconds_total = %v, want a little above 0", v)
	}
}

// onlyDesc is col's metrics whose name contains name.
func onlyDesc(col prometheus.Collector, name string) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		m := make(chan prometheus.Metric, 64)
		go func() { col.Collect(m); close(m) }()
		for x := range m {
			if strings.Contains(x.Desc().String(), `"xdpscan_`+name+`"`) {
				ch <- x
			}
		}
	})
}
