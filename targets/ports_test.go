package targets

import (
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
