package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestMetricsShardBadInput: bad --metrics-addr, --shard and merge input
// are usage errors (exit status 2) that say what is wrong, before anything
// is attached or written.
func TestMetricsShardBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		root bool // reaches the bind: needs the capabilities' preflight to pass
		want string
	}{
		{"shard 0 of masscan's form", []string{"scan", "198.18.0.0/24", "-p", "80", "--allow", "198.18.0.0/15", "--shard", "0/3"}, false, "1 <= X <= Y"},
		{"shard past shards", []string{"scan", "198.18.0.0/24", "-p", "80", "--allow", "198.18.0.0/15", "--shard", "4/3"}, false, "1 <= X <= Y"},
		{"shard not a number", []string{"scan", "198.18.0.0/24", "-p", "80", "--allow", "198.18.0.0/15", "--shard", "one"}, false, "shard number"},
		{"merge nothing", []string{"merge"}, false, "name the parts"},
		{"merge bad format", []string{"merge", "--format", "yaml", "x"}, false, "unknown --format"},
		{"merge missing file", []string{"merge", "/nonexistent/part.ndjson"}, false, "no such file"},
		{"monitor metrics addr without port", []string{"monitor", "-i", "lo", "--metrics-addr", "127.0.0.1"}, true, "want HOST:PORT"},
		{"capture metrics addr bad port", []string{"capture", "-i", "lo", "--count-only", "--metrics-addr", "127.0.0.1:99999"}, true, "--metrics-addr"},
		{"monitor empty interface in list", []string{"monitor", "-i", "lo,", "--metrics-addr", "127.0.0.1:0"}, false, "empty interface name"},
		{"monitor interface twice", []string{"monitor", "-i", "lo,lo"}, false, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("reaches the bind after the capability preflight: run as root")
			}
			err := run(tt.args)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run %q: %v: want exit status 2 and %q", tt.args, err, tt.want)
			}
		})
	}
}
