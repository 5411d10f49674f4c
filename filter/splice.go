package filter

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// Call is one place a BPF program calls the filter: the BPF function its C
// code calls (a global function returning the filter's result) and the
// frame shape the code has checked before the call, which the filter is
// specialized for. A shape must claim no more than the C code checks.
type Call struct {
	Function string
	Shape    Shape
	// Context is the program's context type: XDP (the zero value) or a
	// TC program's __sk_buff.
	Context Context
}

// Splice puts the translated filter prog where insns call each function of
// calls, specialized for each call's frame shape, to return its result to
// the calling code: no tail call, no trip through a map. The filter's code
// takes the call's place (TranslateInline); only a filter that uses scratch
// memory, which inline code has no stack for, or needs a helper call (a
// packet offset computed at run time, the packet length: ErrNeedsHelper),
// becomes the function's body instead (Translate). The call costs more than
// the filter on a flooded link: 30% of the capture program's samples were
// at its return (perf, count-only on the testbed's flood), ~4 ns a packet.
func Splice(insns asm.Instructions, prog []bpf.RawInstruction, calls []Call) (asm.Instructions, error) {
	var inline []namedCode
	for _, c := range calls {
		body, err := translateInline(prog, c.Shape, c.Context)
		if err == nil {
			inline = append(inline, namedCode{c.Function, ownLabels(body, c.Function)})
			continue
		}
		if !errors.Is(err, ErrUsesScratch) && !errors.Is(err, ErrNeedsHelper) {
			return nil, fmt.Errorf("translate filter: %w", err)
		}
		if body, err = translate(prog, c.Shape, ownRegisters, c.Context, asm.Instructions{asm.Return()}); err != nil {
			return nil, fmt.Errorf("translate filter: %w", err)
		}
		if insns, err = replaceFunction(insns, c.Function, ownLabels(body, c.Function)); err != nil {
			return nil, fmt.Errorf("install filter: %w", err)
		}
	}
	insns, err := inlineCalls(insns, inline)
	if err != nil {
		return nil, fmt.Errorf("install filter: %w", err)
	}
	return insns, nil
}

// namedCode is the code to put in place of the calls of a function.
type namedCode struct {
	function string
	body     asm.Instructions
}

// ownLabels gives the labels of one copy of the filter (jump targets,
// which must be unique in the program) the suffix of the function it
// stands for.
func ownLabels(body asm.Instructions, function string) asm.Instructions {
	out := slices.Clone(body)
	for i, ins := range out {
		if sym := ins.Symbol(); sym != "" {
			out[i] = ins.WithSymbol(sym + "_" + function)
		}
		if ref := out[i].Reference(); ref != "" && out[i].OpCode.Class().IsJump() {
			out[i] = out[i].WithReference(ref + "_" + function)
		}
	}
	return out
}

// inlineCalls returns insns with the one call of each BPF function named
// replaced by its body, which must leave what the call would return in R0
// and touch only what a call may clobber (R0-R5), and with the functions
// removed. Clang's jumps are relative, so every jump first gets its target
// by symbol, which keeps it right however many instructions the bodies
// add.
func inlineCalls(insns asm.Instructions, code []namedCode) (asm.Instructions, error) {
	var err error
	for _, c := range code {
		if len(c.body) == 0 {
			return nil, fmt.Errorf("empty body for %s", c.function)
		}
		if insns, err = removeFunction(insns, c.function); err != nil {
			return nil, err
		}
	}
	if insns, err = jumpsBySymbol(insns, "xdpscan_jump_target_", false); err != nil {
		return nil, err
	}
	for _, c := range code {
		call := -1
		for i := range insns {
			if insns[i].IsFunctionCall() && insns[i].Reference() == c.function {
				if call >= 0 {
					return nil, fmt.Errorf("%s is called more than once", c.function)
				}
				call = i
			}
		}
		if call < 0 {
			return nil, fmt.Errorf("no call of %s in the program", c.function)
		}
		body := slices.Clone(c.body)
		if sym := insns[call].Symbol(); sym != "" {
			if body[0].Symbol() != "" {
				return nil, fmt.Errorf("body of %s starts with its own label %q", c.function, body[0].Symbol())
			}
			body[0] = body[0].WithSymbol(sym) // a jump's target
		}
		insns = slices.Concat(insns[:call], body, insns[call+1:])
	}
	return insns, nil
}

// functionSpan is where the BPF function name starts and ends in insns: a
// function ends where the next symbol (function) starts. It is -1, -1 when
// there is no such function.
func functionSpan(insns asm.Instructions, name string) (start, end int) {
	start = slices.IndexFunc(insns, func(ins asm.Instruction) bool { return ins.Symbol() == name })
	if start < 0 {
		return -1, -1
	}
	end = start + 1
	for end < len(insns) && insns[end].Symbol() == "" {
		end++
	}
	return start, end
}

// removeFunction returns insns without the BPF function name.
func removeFunction(insns asm.Instructions, name string) (asm.Instructions, error) {
	start, end := functionSpan(insns, name)
	if start < 0 {
		return nil, fmt.Errorf("no function %s in the program", name)
	}
	return slices.Concat(insns[:start], insns[end:]), nil
}

// jumpsBySymbol gives every jump that has only a relative offset its
// target's symbol (a new one, prefix and the target's index, where the
// target has none), so the program can grow or shrink between them. Call
// it on whole functions only: the new symbols sit inside them, where the
// next function's start can no longer be told by the next symbol. A gotol
// (32-bit offset) is left as it is where allowGotol holds, and refused
// otherwise: a program that never had one is not expected to hold one.
// Each caller keeps its own prefix, so a second pass cannot name a new
// target after one the first pass already used for another.
func jumpsBySymbol(insns asm.Instructions, prefix string, allowGotol bool) (asm.Instructions, error) {
	out := slices.Clone(insns)
	byOffset := map[asm.RawInstructionOffset]int{}
	for it := out.Iterate(); it.Next(); {
		byOffset[it.Offset] = it.Index
	}
	for it := out.Iterate(); it.Next(); {
		ins := it.Ins
		if ins.Reference() != "" {
			continue
		}
		if !isLocalJump(*ins) {
			if ins.OpCode.Class() == asm.Jump32Class && ins.OpCode.JumpOp() == asm.Ja && !allowGotol {
				return nil, fmt.Errorf("instruction %d: a 32-bit jump (gotol), which this program never had", it.Index)
			}
			continue
		}
		target, ok := byOffset[it.Offset+1+asm.RawInstructionOffset(ins.Offset)]
		if !ok {
			return nil, fmt.Errorf("instruction %d jumps to no instruction (offset %d)", it.Index, ins.Offset)
		}
		sym := out[target].Symbol()
		if sym == "" {
			sym = fmt.Sprintf("%s%d", prefix, target)
			out[target] = out[target].WithSymbol(sym)
		}
		*ins = ins.WithReference(sym)
		ins.Offset = -1
	}
	return out, nil
}

// replaceFunction returns insns with the body of the BPF function name (a
// global function, which the verifier checks on its own against its BTF
// prototype) replaced. The first instruction keeps the original's metadata:
// the function's symbol, its BTF and the line info the kernel wants at
// every function's start.
func replaceFunction(insns asm.Instructions, name string, body asm.Instructions) (asm.Instructions, error) {
	start, end := functionSpan(insns, name)
	if start < 0 {
		return nil, fmt.Errorf("no function %s in the program", name)
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("empty body for %s", name)
	}
	if body[0].Symbol() != "" {
		return nil, fmt.Errorf("body of %s starts with its own label %q", name, body[0].Symbol())
	}
	first := body[0]
	first.Metadata = insns[start].Metadata
	return slices.Concat(insns[:start], asm.Instructions{first}, body[1:], insns[end:]), nil
}
