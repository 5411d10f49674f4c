package scan

import (
	"testing"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/internal/sysfstest"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/targets"
)

// The scan's rings: one per receiving CPU from two such CPUs up (auto),
// the memory of one shared ring split between them.
func TestScanRingPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      loader.RingsMode
		cpus      int
		wantRings int
		wantBytes uint32
	}{
		{"auto, one CPU: shared", "", 1, 1, 0},
		{"auto, two CPUs", loader.RingsAuto, 2, 3, loader.RingBytes / 2},
		{"auto, 8 CPUs", loader.RingsAuto, 8, 9, loader.RingBytes / 8},
		{"auto, 64 CPUs: at least 1 MiB each", loader.RingsAuto, 64, 65, minCPURing},
		{"shared, 8 CPUs", loader.RingsShared, 8, 1, 0},
		{"per-cpu, one CPU", loader.RingsPerCPU, 1, 2, loader.RingBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sysfstest.Use(t, &netdev.SysRoot, sysfstest.Root(t, map[string]string{
				"sys/devices/system/cpu/online": sysfstest.Online(tc.cpus),
				"sys/class/net/v0/threaded":     "0",
			}))
			cfg := Config{Rings: tc.mode, Path: route.Path{Iface: "v0"}}
			plan, ch, err := cfg.ringPlan()
			if err != nil {
				t.Fatal(err)
			}
			if ch.Rings != tc.wantRings || ch.RingBytes != tc.wantBytes || plan.Rings() != tc.wantRings-1 || len(ch.ReceivingCPUs) != tc.cpus {
				t.Fatalf("choice %+v (plan %d rings of %d bytes): want %d rings of %d bytes", ch, plan.Rings(), plan.Bytes, tc.wantRings, tc.wantBytes)
			}
		})
	}
}

// The kernel's table of reported pairs holds every pair of the scan
// without --reset (targets retransmit), and only the recent ones with it.
func TestDedupEntries(t *testing.T) {
	r16, err := targets.ParseTarget("198.18.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	r24, _ := targets.ParseTarget("198.18.0.0/24")
	ports := []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 80}, {Proto: targets.ProtoTCP, Num: 443}, {Proto: targets.ProtoTCP, Num: 8080}}
	for _, tc := range []struct {
		name  string
		r     targets.Range
		reset bool
		want  uint32
	}{
		{"/16 x 4, --reset=false: every pair", r16, false, 262144},
		{"/16 x 4, --reset: the last few ms' pairs", r16, true, resetDedupPairs},
		{"/24 x 4, --reset=false: at least 1024", r24, false, 1024},
		{"/24 x 4, --reset: the scan is smaller than the cache", r24, true, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Targets: targets.NewRangeSet([]targets.Range{tc.r}), Ports: ports, Reset: tc.reset}
			if got := cfg.dedupEntries(); got != tc.want {
				t.Errorf("dedupEntries = %d, want %d", got, tc.want)
			}
		})
	}
}
