package loader_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/loader"
)

// TestVerifierWork keeps each program's verification cheap: the verifier's
// time is the largest fixed cost of a short scan, and it grows with the
// instructions it processes, which a change that inlines the parser back
// into its callers multiplies (145,251 for the scan program then; about
// 9,000 with parse_packet a global function).
func TestVerifierWork(t *testing.T) {
	bpftest.Require(t)
	const most = 50_000
	for _, obj := range []struct {
		name string
		load func() (*ebpf.CollectionSpec, error)
	}{{"scan", bpf.LoadScan}, {"capture", bpf.LoadCapture}, {"responder", bpf.LoadResponder}} {
		spec, err := obj.load()
		if err != nil {
			t.Fatal(err)
		}
		for name := range spec.Programs {
			t.Run(obj.name+"/"+name, func(t *testing.T) {
				one := spec.Copy()
				for other := range one.Programs {
					if other != name {
						delete(one.Programs, other)
					}
				}
				// As LoadCapture without a device: no metadata kfunc call.
				loader.WithoutVLANTagKfunc(one.Programs[name].Instructions)
				coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
				if err != nil {
					t.Fatal(err)
				}
				defer coll.Close()
				n := bpftest.VerifierProcessed(t, coll.Programs[name].VerifierLog)
				t.Logf("%d instructions processed", n)
				if n > most {
					t.Errorf("the verifier processed %d instructions, want at most %d: is parse_packet still a global function?", n, most)
				}
			})
		}
	}
}
