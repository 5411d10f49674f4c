package filter

import (
	"fmt"
	"regexp"
	"strings"
)

// SyntaxError is an expression libpcap refused: its message, then Hints.
// Callers treat it as bad input (exit status 2).
type SyntaxError struct {
	Expr    string
	Libpcap string // pcap_compile's message
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter %s: %s%s", QuoteShort(e.Expr), e.Libpcap, Hints(e.Expr))
}

// keywordNumber is a keyword run into its number: "port80", "portrange1-5".
var keywordNumber = regexp.MustCompile(`\b(port|portrange|host|net|len|proto|vlan|mpls)(\d[\d.:/-]*)\b`)

// pcapKeywords are words users type in capitals, which libpcap does not know.
var pcapKeywords = []string{"tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "host", "port", "net", "src", "dst",
	"and", "or", "not", "vlan", "ether", "portrange", "proto", "less", "greater", "broadcast", "multicast"}

// Hints are suggestions, each on its own line, for the usual mistakes in
// a filter libpcap refused ("" when none applies): a keyword run into its
// number (`tcp port80`), keywords in capitals (`TCP port 80`), a quote
// left in the expression (an unbalanced quote in the shell), an operator
// with nothing after it, unbalanced parentheses, && and || spelt as in C
// work but a single & or | means bitwise.
func Hints(expr string) string {
	var hints []string
	if m := keywordNumber.FindStringSubmatch(expr); m != nil {
		hints = append(hints, fmt.Sprintf("%q: put a space between the keyword and its value: %q", m[0], m[1]+" "+m[2]))
	}
	for _, w := range strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' || r == '(' || r == ')' }) {
		for _, k := range pcapKeywords {
			if w != k && strings.EqualFold(w, k) {
				hints = append(hints, fmt.Sprintf("%q: libpcap's keywords are lower case: %q", w, k))
				break
			}
		}
	}
	if strings.ContainsAny(expr, `'"`) {
		hints = append(hints, "the expression contains a quote character: a quote left unbalanced in the shell reaches the filter; quote the whole expression once, e.g. 'tcp port 80'")
	}
	if n := strings.Count(expr, "(") - strings.Count(expr, ")"); n != 0 {
		hints = append(hints, fmt.Sprintf("unbalanced parentheses (%+d)", n))
	}
	f := strings.Fields(expr)
	if len(f) > 0 {
		switch strings.ToLower(f[len(f)-1]) {
		case "and", "or", "not", "&&", "||", "!":
			hints = append(hints, fmt.Sprintf("the expression ends with %q: something must follow it", f[len(f)-1]))
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return "\n  hint: " + strings.Join(hints, "\n  hint: ")
}
