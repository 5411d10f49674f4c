package loader

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

func TestResolveRelay(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatalf("possible CPUs: %v", err)
	}
	tests := []struct {
		name      string
		cfg       ScanConfig
		wantQueue uint32
		wantErr   string
	}{
		{"none", ScanConfig{SendSlots: 1024}, 0, ""},
		{"default queue", ScanConfig{SendSlots: 1024, SendRelay: &SendRelay{CPU: 0}}, defaultRelayQueue, ""},
		{"own queue", ScanConfig{SendSlots: 1024, SendRelay: &SendRelay{CPU: uint32(cpus - 1), Queue: 2048}}, 2048, ""},
		{"no transmitter", ScanConfig{SendRelay: &SendRelay{}}, 0, "needs the transmitter"},
		{"queue below a batch", ScanConfig{SendSlots: 1024, SendRelay: &SendRelay{Queue: 512}}, 0, "want 1024 (one batch) to 16384"},
		{"queue past the kernel's limit", ScanConfig{SendSlots: 1024, SendRelay: &SendRelay{Queue: 32768}}, 0, "to 16384"},
		{"no such CPU", ScanConfig{SendSlots: 1024, SendRelay: &SendRelay{CPU: uint32(cpus)}}, 0, "this machine has CPUs 0-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, n, err := resolveRelay(tc.cfg)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tc.cfg.SendRelay == nil:
				if r != nil {
					t.Fatalf("relay %+v without one asked", r)
				}
			case r.Queue != tc.wantQueue || r.CPU != tc.cfg.SendRelay.CPU || n != cpus:
				t.Fatalf("relay %+v over %d CPUs, want queue %d on CPU %d over %d", r, n, tc.wantQueue, tc.cfg.SendRelay.CPU, cpus)
			}
		})
	}
}
