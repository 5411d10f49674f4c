package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ParsePorts parses "22,80,443,8000-8100" into sorted, de-duplicated ports.
// Port 0 and ports past 65535 are errors, as are reversed ranges.
func ParsePorts(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no ports given (example: 22,80,443,8000-8100)")
	}
	var out []uint16
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := parsePort(lo, item)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi, item); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("port range %q is reversed; did you mean %d-%d?", item, b, a)
			}
		}
		for p := int(a); p <= int(b); p++ {
			out = append(out, uint16(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parsePort(s, item string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("port %q in %q is not a number", s, item)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d in %q is out of range 1-65535", n, item)
	}
	return uint16(n), nil
}
