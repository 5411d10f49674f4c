package targets

import (
	"runtime"
	"strings"
	"testing"
)

func TestParsePortSpec(t *testing.T) {
	tests := []struct {
		in   string
		want string // ports joined by spaces, or "error"
	}{
		{"80", "80"},
		{"443,80,U:53", "80 443 U:53"},
		{"T:22-23,u:161-162,U:53", "22 23 U:53 U:161 U:162"},
		{"80,T:80,U:80", "80 U:80"},
		{"X:80", "error"},
		{"U:", "error"},
		{"U:0", "error"},
		{"U:70000", "error"},
		{"U:20-10", "error"},
		{"", "error"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			ports, err := ParsePortSpec(tc.in)
			got := ""
			for i, p := range ports {
				if i > 0 {
					got += " "
				}
				got += p.String()
			}
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Fatalf("ParsePortSpec(%q) = %q (%v), want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestPortSpecMemoryIsBounded: the ports are a set, so a spec repeating
// the whole range costs what the range costs (300 copies once took 318 MB).
func TestPortSpecMemoryIsBounded(t *testing.T) {
	spec := strings.Repeat("1-65535,U:1-65535,", 300) + "80"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ports, err := ParsePortSpec(spec)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2*65535 || ports[0] != (Port{ProtoTCP, 1}) || ports[len(ports)-1] != (Port{ProtoUDP, 65535}) {
		t.Fatalf("%d ports from %v to %v, want TCP 1 to UDP 65535, each once", len(ports), ports[0], ports[len(ports)-1])
	}
	// The result is 131,070 ports of 4 bytes, and the text splits into 601 items.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Fatalf("parsing allocated %d bytes, want at most 2 MiB", alloc)
	}
	src, err := ParsePorts(strings.Repeat("1-65535,", 300) + "1")
	if err != nil || len(src) != 65535 {
		t.Fatalf("ParsePorts: %d ports, %v", len(src), err)
	}
}

func TestPortSetRangesAtWordEdges(t *testing.T) {
	for _, tc := range []struct{ lo, hi uint16 }{{1, 1}, {63, 64}, {64, 127}, {1, 65535}, {65535, 65535}, {100, 1000}, {127, 128}} {
		var s portSet
		s.addRange(tc.lo, tc.hi)
		s.addRange(tc.lo, tc.hi) // a second time adds nothing
		var got []uint16
		for p := range s.each() {
			got = append(got, p)
		}
		if len(got) != int(tc.hi-tc.lo)+1 || s.count != len(got) || got[0] != tc.lo || got[len(got)-1] != tc.hi {
			t.Errorf("%d-%d: %d ports (count %d) from %v", tc.lo, tc.hi, len(got), s.count, got[:min(3, len(got))])
		}
	}
}
