// Package bpftest holds what the tests that load xdpscan's programs share:
// the skip when this process or kernel cannot run them, and libpcap's
// classic BPF VM as the reference a translated filter is held to.
package bpftest

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// Require skips the test unless it runs as root on a kernel that has the
// programs' features (kfloor.Programs) and also those given: the only
// reasons a BPF_PROG_RUN test may skip. Everything else fails the test.
func Require(t testing.TB, features ...kfloor.Feature) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("BPF_PROG_RUN needs root (CAP_BPF + CAP_NET_ADMIN); run the tests as root")
	}
	missing, err := kfloor.Missing(append(kfloor.Programs[:len(kfloor.Programs):len(kfloor.Programs)], features...)...)
	if err != nil {
		t.Fatalf("kernel version: %v", err)
	}
	if len(missing) > 0 {
		var why []string
		for _, f := range missing {
			why = append(why, f.Explain())
		}
		t.Skip("this kernel is too old: " + strings.Join(why, "; "))
	}
}

// ClassicVM is the reference interpreter for a compiled filter
// (filter.Compile's output).
func ClassicVM(t testing.TB, raw []cbpf.RawInstruction) *cbpf.VM {
	t.Helper()
	insns, ok := cbpf.Disassemble(raw)
	if !ok {
		t.Fatalf("cannot disassemble %v", raw)
	}
	vm, err := cbpf.NewVM(insns)
	if err != nil {
		t.Fatalf("classic BPF VM: %v", err)
	}
	return vm
}

var processed = regexp.MustCompile(`processed (\d+) insns`)

// VerifierProcessed is how many instructions the verifier processed, from
// the log of a program loaded with ebpf.LogLevelStats.
func VerifierProcessed(t testing.TB, log string) int {
	t.Helper()
	m := processed.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no statistics in the verifier log:\n%s", log)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatalf("verifier statistics %q: %v", m[0], err)
	}
	return n
}
