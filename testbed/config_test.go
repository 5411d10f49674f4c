package testbed

import (
	"net/netip"
	"testing"
)

func TestStateIsTheGroundTruth(t *testing.T) {
	cfg := Config{Range: netip.MustParsePrefix("198.18.0.0/20")}.Defaults()
	tests := []struct {
		addr string
		port uint16
		want State
	}{
		{"198.18.0.1", 80, Open},
		{"198.18.15.239", 8080, Open},
		{"198.18.0.1", 81, Closed},
		{"198.18.3.240", 80, Filtered},
		{"198.18.3.255", 22, Filtered},
		{"198.18.16.1", 80, Outside},
		{"10.0.0.1", 80, Outside},
	}
	for _, tc := range tests {
		if got := cfg.State(netip.MustParseAddr(tc.addr), tc.port); got != tc.want {
			t.Errorf("State(%s, %d) = %s, want %s", tc.addr, tc.port, got, tc.want)
		}
	}
	tally := cfg.Tally(netip.MustParsePrefix("198.18.0.0/24"), []uint16{80, 81})
	if tally[Open] != 240 || tally[Closed] != 240 || tally[Filtered] != 32 {
		t.Fatalf("tally %v, want 240 open, 240 closed, 32 filtered", tally)
	}
}

func TestValidateKeepsTrafficInTheBenchmarkingRange(t *testing.T) {
	bad := map[string]Config{
		"public range":    {Range: netip.MustParsePrefix("8.8.8.0/24")},
		"private range":   {Range: netip.MustParsePrefix("10.0.0.0/16")},
		"wider than /15":  {Range: netip.MustParsePrefix("198.0.0.0/8")},
		"overlaps link":   {Range: netip.MustParsePrefix("198.19.0.0/16")},
		"unknown target":  {Target: "stack"},
		"name with slash": {Name: "a/b"},
		"too many ports":  {OpenPorts: make([]uint16, 17)},
	}
	for name, cfg := range bad {
		if err := cfg.Defaults().Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (Config{}).Defaults().Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}
