package filter

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/xdpscan/xdpscan/bpf"
)

func TestReplaceFunction(t *testing.T) {
	spec, err := bpf.LoadCapture()
	if err != nil {
		t.Fatal(err)
	}
	// capture_filter is the capture program's call of the filter for any
	// frame (loader's shapedFilters).
	const fn = "capture_filter"
	insns := spec.Programs["xdpscan_capture"].Instructions
	body := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

	t.Run("replaces only the function's body and keeps its metadata", func(t *testing.T) {
		out, err := replaceFunction(insns, fn, body)
		if err != nil {
			t.Fatal(err)
		}
		start, end := mustSpan(t, insns, fn)
		if got, want := len(out), len(insns)-(end-start)+len(body); got != want {
			t.Fatalf("%d instructions, want %d", got, want)
		}
		newStart, newEnd := mustSpan(t, out, fn)
		if newEnd-newStart != len(body) {
			t.Fatalf("function has %d instructions, want %d", newEnd-newStart, len(body))
		}
		if btf.FuncMetadata(&out[newStart]) == nil {
			t.Fatal("the function's first instruction lost its BTF func info")
		}
		if out[newStart].OpCode != body[0].OpCode || out[newStart].Constant != body[0].Constant {
			t.Fatalf("first instruction %v, want %v", out[newStart], body[0])
		}
		for _, name := range []string{"xdpscan_capture", "parse_packet"} {
			a0, a1 := mustSpan(t, insns, name)
			b0, b1 := mustSpan(t, out, name)
			if a1-a0 != b1-b0 {
				t.Errorf("%s changed size: %d -> %d instructions", name, a1-a0, b1-b0)
			}
		}
	})
	for _, tc := range []struct {
		name, fn string
		body     asm.Instructions
		wantErr  string
	}{
		{"unknown function", "no_such_function", body, "no function no_such_function"},
		{"empty body", fn, nil, "empty body"},
		{"body starting with a label", fn, asm.Instructions{asm.Return().WithSymbol("x")}, "its own label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := replaceFunction(insns, tc.fn, tc.body); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// mustSpan is where function name starts and ends in insns, found here
// rather than by the code under test.
func mustSpan(t *testing.T, insns asm.Instructions, name string) (int, int) {
	t.Helper()
	for i, ins := range insns {
		if ins.Symbol() == name {
			end := i + 1
			for end < len(insns) && insns[end].Symbol() == "" {
				end++
			}
			return i, end
		}
	}
	t.Fatalf("no function %s", name)
	return 0, 0
}
