package probe_test

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/probe"
)

// TestValidatorsExistInScanProgram: every Go probe kind names a function
// the compiled scan program contains, and every validator the program
// contains is named by a probe kind. The validators are not inlined, so
// each starts a symbol in xdpscan_scan's instructions.
func TestValidatorsExistInScanProgram(t *testing.T) {
	spec, err := bpf.LoadScan()
	if err != nil {
		t.Fatalf("parse the embedded scan program: %v", err)
	}
	prog := spec.Programs["xdpscan_scan"]
	if prog == nil {
		t.Fatal("the scan program has no xdpscan_scan")
	}
	var funcs []string
	for _, ins := range prog.Instructions {
		if sym := ins.Symbol(); sym != "" {
			funcs = append(funcs, sym)
		}
	}

	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	src := netip.MustParseAddr("198.19.0.1")
	var key probe.CookieKey
	kinds := []struct {
		name string
		kind interface{ Validator() string }
	}{
		{"SYN", probe.NewSYN(mac, mac, src, 40000, key)},
		{"UDP", probe.NewUDP(mac, mac, src, 40000, 40255, &probe.Payload{}, key)},
		{"Echo", probe.NewEcho(mac, mac, src, key)},
	}
	named := map[string]string{}
	for _, k := range kinds {
		v := k.kind.Validator()
		if !slices.Contains(funcs, v) {
			t.Errorf("probe.%s names validator %q, which xdpscan_scan does not contain (its functions: %v)", k.name, v, funcs)
		}
		if other, dup := named[v]; dup {
			t.Errorf("probe.%s and probe.%s both name validator %q", other, k.name, v)
		}
		named[v] = k.name
	}
	for _, f := range funcs {
		if strings.HasSuffix(f, "_validate") && named[f] == "" {
			t.Errorf("xdpscan_scan contains validator %s, which no Go probe kind names", f)
		}
	}
}
