package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/loader"
)

// TestAttachFlags: the -i and --mode checks shared by monitor and the bench
// commands that attach XDP.
func TestAttachFlags(t *testing.T) {
	tests := []struct {
		name, iface, mode string
		want              loader.Mode
		wantErr           string
	}{
		{"auto by default", "lo", "", loader.ModeAuto, ""},
		{"driver is native", "lo", "driver", loader.ModeNative, ""},
		{"no interface", "", "auto", "", "monitor: -i IFACE is required"},
		{"no such interface", "xs-none0", "auto", "", "monitor: interface xs-none0: no such interface; see `ip link`"},
		{"bad mode", "lo", "fast", "", `monitor: unknown XDP mode "fast"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mode, err := attachFlags("monitor", tc.iface, tc.mode)
			if tc.wantErr == "" {
				if err != nil || mode != tc.want {
					t.Errorf("got %q, %v; want %q", mode, err, tc.want)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want a usage error with %q", err, tc.wantErr)
			}
		})
	}
}
