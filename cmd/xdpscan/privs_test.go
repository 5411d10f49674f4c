package main

import (
	"testing"

	"github.com/xdpscan/xdpscan/internal/privs"
)

// TestPathNeeds holds each way of running a subcommand to the
// capabilities it needs (the kernel's checks: README's table).
func TestPathNeeds(t *testing.T) {
	tests := []struct {
		got      pathNeeds
		wantName string
		want     privs.Set
	}{
		{scanNeeds("xdp", "socket", false), "scan", privs.Of(privs.CapBPF, privs.CapNetAdmin, privs.CapNetRaw)},
		{scanNeeds("xdp", "xdp", false), "scan --tx xdp", privs.Of(privs.CapBPF, privs.CapNetAdmin)},
		{scanNeeds("pcap", "socket", false), "scan --rx pcap", privs.Of(privs.CapNetRaw)},
		{scanNeeds("xdp", "socket", true), "scan --connect", 0},
		{scanNeeds("pcap", "xdp", true), "scan --connect", 0},
		{captureNeeds("xdp"), "capture", privs.Of(privs.CapBPF, privs.CapNetAdmin)},
		{captureNeeds("pcap"), "capture --rx pcap", privs.Of(privs.CapNetRaw)},
		{monitorNeeds, "monitor", privs.Of(privs.CapBPF, privs.CapNetAdmin)},
	}
	for _, tc := range tests {
		t.Run(tc.wantName, func(t *testing.T) {
			if tc.got.name != tc.wantName || tc.got.caps() != tc.want {
				t.Errorf("%q needs %s, want %q needs %s", tc.got.name, tc.got.caps(), tc.wantName, tc.want)
			}
			if tc.got.caps()&^binaryCaps != 0 {
				t.Errorf("%s needs %s, which the setcap line (%s) does not grant", tc.wantName, tc.got.caps(), binaryCaps.Setcap())
			}
		})
	}
	if binaryCaps.Setcap() != "cap_bpf,cap_net_admin,cap_net_raw" {
		t.Errorf("setcap line grants %s", binaryCaps.Setcap())
	}
}
