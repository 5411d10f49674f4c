package filter

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
)

// TestTranslatedVerifierWork bounds what the verifier processes for each
// translated filter: an indirect load branches on each unknown bit of X,
// and the verifier follows every branch, through what follows too when a
// later test of X depends on the branch taken. The bound keeps that from
// growing unnoticed toward the kernel's 1M limit and the load time a user
// waits.
func TestTranslatedVerifierWork(t *testing.T) {
	bpftest.Require(t)
	const most = 20_000
	exprs := slices.Concat(realWorldFilters, generatedFilters(rand.New(rand.NewPCG(9, 10)), 80))
	worst, worstExpr := 0, ""
	for _, expr := range exprs {
		raw, err := Compile(expr, 262144)
		if err != nil {
			continue // libpcap refuses some generated combinations
		}
		for _, ts := range testShapes {
			insns, err := Translate(raw, ts.shape, asm.Instructions{asm.Return()})
			if err != nil {
				t.Fatalf("%q for %s: %v", expr, ts.name, err)
			}
			var p *ebpf.Program
			capstest.WithEffective(t, documented, func() {
				p, err = ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: insns, License: "Dual BSD/GPL"},
					ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats})
			})
			if err != nil {
				t.Fatalf("%q for %s: %v", expr, ts.name, err)
			}
			n := bpftest.VerifierProcessed(t, p.VerifierLog)
			p.Close()
			if n > worst {
				worst, worstExpr = n, expr+" for "+ts.name
			}
			if n > most {
				t.Errorf("%q for %s: the verifier processed %d instructions, want at most %d", expr, ts.name, n, most)
			}
		}
	}
	t.Logf("most processed: %d instructions, %q", worst, worstExpr)
}
