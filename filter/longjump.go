package filter

import (
	"fmt"
	"math"

	"github.com/cilium/ebpf/asm"
)

// MaxProgramInstructions is the kernel's limit on a program's length for a
// loader holding CAP_BPF (BPF_COMPLEXITY_LIMIT_INSNS, which also bounds
// the instructions the verifier processes).
const MaxProgramInstructions = 1_000_000

// LongJumps returns insns, a whole program (its BPF functions included)
// whose jumps target symbols, with every jump that lies farther than a
// 16-bit offset reaches made long: an eBPF jump's offset is 16 bits, and
// cilium/ebpf truncates a longer one without a word, which the verifier
// then refuses ("jump out of range") or, worse, follows somewhere else.
// A long filter gets there: the code translated from one classic jump
// (8-bit offsets, or a 32-bit ja) can be many times longer. An
// unconditional jump becomes `gotol` (BPF_JMP32|BPF_JA, a 32-bit offset
// in imm, Linux 6.4); a conditional one jumps over a `gotol` to its target
// on the opposite condition (or, for tests that have no opposite, to one
// placed after a short `ja` past it). Each change lengthens the code, so
// it repeats until every jump fits. Jumps with a plain offset are first
// given symbols, so insertions cannot misplace them.
func LongJumps(insns asm.Instructions) (asm.Instructions, error) {
	out, err := jumpsBySymbol(insns, "xdpscan_long_jump_target_", true)
	if err != nil {
		return nil, err
	}
	for {
		pos := make([]int, len(out)+1)
		symbols := map[string]int{}
		for i, ins := range out {
			pos[i+1] = pos[i] + int(ins.Size()/asm.InstructionSize)
			if s := ins.Symbol(); s != "" {
				symbols[s] = pos[i]
			}
		}
		if n := pos[len(out)]; n > MaxProgramInstructions {
			return nil, fmt.Errorf("the program is %d eBPF instructions long, over the kernel's limit of %d", n, MaxProgramInstructions)
		}
		var next asm.Instructions
		changed := false
		for i, ins := range out {
			target, ok := symbols[ins.Reference()]
			if !ok || !isLocalJump(ins) || ins.Offset != -1 {
				next = append(next, ins)
				continue
			}
			if d := target - pos[i] - 1; d >= math.MinInt16 && d <= math.MaxInt16 {
				next = append(next, ins)
				continue
			}
			changed = true
			long := asm.LongJump(ins.Reference())
			if ins.OpCode.JumpOp() == asm.Ja {
				long.Metadata = ins.Metadata // the jump's own symbol, if it is a target
				next = append(next, long)
				continue
			}
			skip := ins.WithReference("")
			if inv, ok := inverseJump[ins.OpCode.JumpOp()]; ok {
				// if !cond: skip the gotol.
				skip.OpCode = skip.OpCode.SetJumpOp(inv)
				skip.Offset = 1
				next = append(next, skip, long)
				continue
			}
			// if cond: to the gotol; else past it.
			skip.Offset = 1
			over := asm.Ja.Label("")
			over.Offset = 1
			over = over.WithReference("")
			next = append(next, skip, over, long)
		}
		out = next
		if !changed {
			return out, nil
		}
	}
}

// inverseJump is the jump taken exactly when op's is not, for every
// conditional jump that has one (JSet has none).
var inverseJump = map[asm.JumpOp]asm.JumpOp{
	asm.JEq: asm.JNE, asm.JNE: asm.JEq, asm.JGT: asm.JLE, asm.JLE: asm.JGT, asm.JGE: asm.JLT, asm.JLT: asm.JGE,
	asm.JSGT: asm.JSLE, asm.JSLE: asm.JSGT, asm.JSGE: asm.JSLT, asm.JSLT: asm.JSGE,
}

// isLocalJump says whether ins jumps inside its function: any jump but a
// call, an exit and a gotol (whose 32-bit offset needs nothing done).
func isLocalJump(ins asm.Instruction) bool {
	if !ins.OpCode.Class().IsJump() {
		return false
	}
	switch op := ins.OpCode.JumpOp(); {
	case op == asm.Call || op == asm.Exit:
		return false
	case op == asm.Ja && ins.OpCode.Class() == asm.Jump32Class:
		return false
	}
	return true
}
