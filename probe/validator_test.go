package probe_test

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/probe"
)

// cFunc is a C function's definition in a header: where it starts and ends.
type cFunc struct {
	file        string // base name, as BTF line info names it
	first, last uint32 // 1-based lines of its signature and closing brace
}

// validatorDefs finds every *_validate function the probe kinds' headers
// (bpf/include/probe_*.h) define.
func validatorDefs(t *testing.T) map[string]cFunc {
	t.Helper()
	headers, err := filepath.Glob("../bpf/include/probe_*.h")
	if err != nil || len(headers) == 0 {
		t.Fatalf("no probe kind headers in ../bpf/include (glob: %v)", err)
	}
	sig := regexp.MustCompile(`^static __always_inline int (\w+_validate)\(`)
	defs := map[string]cFunc{}
	for _, h := range headers {
		src, err := os.ReadFile(h)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(src), "\n")
		for i := 0; i < len(lines); i++ {
			m := sig.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			f := cFunc{file: filepath.Base(h), first: uint32(i + 1)}
			for i++; i < len(lines) && lines[i] != "}"; i++ {
			}
			f.last = uint32(i + 1)
			defs[m[1]] = f
		}
	}
	return defs
}

// TestValidatorsExistInScanProgram: every Go probe kind names a C validator
// that a probe kind header defines and that is compiled into xdpscan_scan,
// and every validator those headers define is named by a Go probe kind.
// The validators are inlined (a call costs more than the check), so their
// names are not symbols of the program: the program's BTF line info shows
// which source lines its instructions came from, and some must lie in the
// validator's body.
func TestValidatorsExistInScanProgram(t *testing.T) {
	spec, err := bpf.LoadScan()
	if err != nil {
		t.Fatalf("parse the embedded scan program: %v", err)
	}
	prog := spec.Programs["xdpscan_scan"]
	if prog == nil {
		t.Fatal("the scan program has no xdpscan_scan")
	}
	defs := validatorDefs(t)
	compiled := func(f cFunc) bool {
		for _, ins := range prog.Instructions {
			if l, ok := ins.Source().(*btf.Line); ok && filepath.Base(l.FileName()) == f.file &&
				l.LineNumber() > f.first && l.LineNumber() < f.last {
				return true
			}
		}
		return false
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
		if other, dup := named[v]; dup {
			t.Errorf("probe.%s and probe.%s both name validator %q", other, k.name, v)
		}
		named[v] = k.name
		f, ok := defs[v]
		if !ok {
			t.Errorf("probe.%s names validator %q, which no bpf/include/probe_*.h defines (they define %v)", k.name, v, defs)
			continue
		}
		if !compiled(f) {
			t.Errorf("probe.%s's validator %s (%s:%d-%d) is not compiled into xdpscan_scan: no instruction comes from its body",
				k.name, v, f.file, f.first, f.last)
		}
	}
	for v, f := range defs {
		if named[v] == "" {
			t.Errorf("%s defines validator %s, which no Go probe kind names", f.file, v)
		}
	}
}
