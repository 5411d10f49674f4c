package main

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestTestbedConfigFlags: each testbed flag lands in its Config field, and a
// bad value is a usage error (exit status 2) naming the flag, the first bad
// flag in the order config parses them when several are bad.
func TestTestbedConfigFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  string // a part of the error; "" for none
		check func(t *testing.T, v *testbedFlagValues)
	}{
		{name: "defaults", check: func(t *testing.T, v *testbedFlagValues) {
			cfg, _ := v.config()
			if !slices.Equal(cfg.UDPOpenPorts, []uint16{53, 123}) || !slices.Equal(cfg.OpenPorts, []uint16{22, 80, 443, 8080}) ||
				cfg.Range != netip.MustParsePrefix("198.18.0.0/16") || cfg.FilteredFrom != 240 || cfg.ProhibitedFrom != 0 || cfg.Range6.IsValid() {
				t.Errorf("config %+v", cfg)
			}
		}},
		{name: "every value set", args: []string{"--udp-open-ports", "7", "--open-ports", "22,9000", "--range", "198.18.4.0/24",
			"--range6", "2001:2::100/120", "--filtered-from", "200", "--prohibited-from", "100"},
			check: func(t *testing.T, v *testbedFlagValues) {
				cfg, _ := v.config()
				if !slices.Equal(cfg.UDPOpenPorts, []uint16{7}) || !slices.Equal(cfg.OpenPorts, []uint16{22, 9000}) ||
					cfg.Range != netip.MustParsePrefix("198.18.4.0/24") || cfg.Range6 != netip.MustParsePrefix("2001:2::100/120") ||
					cfg.FilteredFrom != 200 || cfg.ProhibitedFrom != 100 {
					t.Errorf("config %+v", cfg)
				}
			}},
		{name: "--range6 wins over --ipv6", args: []string{"--ipv6", "--range6", "2001:2::100/120"},
			check: func(t *testing.T, v *testbedFlagValues) {
				if cfg, _ := v.config(); cfg.Range6 != netip.MustParsePrefix("2001:2::100/120") {
					t.Errorf("Range6 %v", cfg.Range6)
				}
			}},
		{name: "bad UDP ports", args: []string{"--udp-open-ports", "0"}, want: "--udp-open-ports: "},
		{name: "bad open ports", args: []string{"--open-ports", "x"}, want: "--open-ports: "},
		{name: "bad range", args: []string{"--range", "198.18.0.0/33"}, want: `--range "198.18.0.0/33": `},
		{name: "bad range6", args: []string{"--range6", "2001:2::/200"}, want: `--range6 "2001:2::/200": `},
		{name: "prohibited-from over 255", args: []string{"--prohibited-from", "256"}, want: "--prohibited-from 256: an octet is 0 to 255"},
		{name: "filtered-from over 255", args: []string{"--filtered-from", "300"}, want: "--filtered-from 300: an octet is 0 to 255"},
		{name: "first bad flag is told", args: []string{"--filtered-from", "300", "--udp-open-ports", "0"}, want: "--udp-open-ports: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, fs := testbedFlags("up")
			if err := fs.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			_, err := v.config()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("config: %v", err)
				}
				tc.check(t, v)
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("config: %v, want a usage error with %q", err, tc.want)
			}
		})
	}
}
