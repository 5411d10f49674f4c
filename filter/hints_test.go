package filter

import (
	"strings"
	"testing"
)

// TestCompileErrorsCarryHints: libpcap's own message comes first, then a
// hint that names the mistake, for the usual ones.
func TestCompileErrorsCarryHints(t *testing.T) {
	tests := []struct{ name, expr, libpcap, hint string }{
		{"keyword run into its number", "tcp port80", "syntax error", `put a space between the keyword and its value: "port 80"`},
		{"capitals", "TCP port 80", "syntax error", `"TCP": libpcap's keywords are lower case: "tcp"`},
		{"unbalanced quote", "tcp port 80'", "", "a quote left unbalanced in the shell"},
		{"dangling and", "tcp and", "syntax error", `ends with "and"`},
		{"unbalanced parenthesis", "(tcp or udp", "syntax error", "unbalanced parentheses (+1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.expr, 262144)
			if err == nil {
				t.Fatalf("%q compiled", tc.expr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.libpcap) || !strings.Contains(msg, "hint: ") || !strings.Contains(msg, tc.hint) {
				t.Fatalf("error %q: want libpcap's %q and the hint %q", msg, tc.libpcap, tc.hint)
			}
			if i, j := strings.Index(msg, tc.libpcap), strings.Index(msg, "hint:"); i > j {
				t.Fatalf("error %q: libpcap's message must come first", msg)
			}
		})
	}
	if h := Hints("tcp port 80"); h != "" {
		t.Fatalf("a good filter got hints %q", h)
	}
}
