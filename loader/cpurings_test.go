package loader_test

import (
	"testing"

	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
	"github.com/xdpscan/xdpscan/loader"
)

// The capture program with per-CPU rings (its ring lookup live, not pruned
// as with per_cpu_rings = 0), and a second program sharing its rings (a
// capture on two interfaces), load with CAP_BPF and CAP_NET_ADMIN only.
func TestPerCPURingsLoadWithDocumentedCapabilities(t *testing.T) {
	bpftest.Require(t)
	raw, err := filter.Compile("udp", 128)
	if err != nil {
		t.Fatal(err)
	}
	plan := loader.RingPlan{CPUs: [][]int{{0}, {1, 2}}, Bytes: 1 << 16}
	capstest.WithEffective(t, documented[:2], func() {
		c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 16, Rings: plan})
		if err != nil {
			t.Fatalf("with %s only: %v", capstest.Names(documented[:2]), short(err))
		}
		defer c.Close()
		if len(c.CPURings) != 2 {
			t.Fatalf("%d per-CPU rings, want 2", len(c.CPURings))
		}
		c2, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 16, Rings: plan, ShareRings: c})
		if err != nil {
			t.Fatalf("second program on the same rings: %v", short(err))
		}
		c2.Close()
	})
}

// A plan the program cannot hold is refused with what is wrong.
func TestRingPlanRefused(t *testing.T) {
	bpftest.Require(t)
	raw, err := filter.Compile("", 128)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		plan loader.RingPlan
	}{
		{"size not a power of two", loader.RingPlan{CPUs: [][]int{{0}}, Bytes: 3 << 16}},
		{"CPU in two rings", loader.RingPlan{CPUs: [][]int{{0}, {0}}, Bytes: 1 << 16}},
		{"CPU past the slots", loader.RingPlan{CPUs: [][]int{{loader.MaxCPURings}}, Bytes: 1 << 16}},
		{"ring without CPU", loader.RingPlan{CPUs: [][]int{{}}, Bytes: 1 << 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loader.LoadCapture(loader.CaptureConfig{Filter: raw, Snaplen: 128, RingBytes: 1 << 16, Rings: tc.plan})
			if err == nil {
				c.Close()
				t.Fatal("loaded")
			}
			t.Log(err)
		})
	}
}
