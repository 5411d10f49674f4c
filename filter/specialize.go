package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Shape is what the code that runs before a filter has already established
// about every packet the filter will see: a least length and the bits of
// some bytes. An XDP program that classifies a frame before filtering it
// (untagged IPv4 without options, not a fragment, UDP) knows where the
// filter's protocol tests will go, so most of them need not run: Specialize
// folds them away. The zero Shape knows nothing.
type Shape struct {
	// MinLen: every packet has at least this many bytes, so loads inside
	// them need no bounds check.
	MinLen uint32
	// Bytes are the packet bits known in advance; each must lie inside
	// MinLen.
	Bytes []KnownByte
	// Tagged: every frame carries an outer 802.1Q or 802.1ad tag (frame
	// bytes 12-15) that the filter must not see, as the Linux kernel
	// moves it into the socket buffer's metadata before AF_PACKET taps
	// (and their socket filters) run. The filter's packet is the frame
	// without those 4 bytes; MinLen and Bytes are of that packet; the
	// VLAN ancillary loads answer from the tag. Untagged (false), the
	// filter's packet is the frame and the VLAN loads say "no tag".
	Tagged bool
	// skb: the packet is a socket buffer (a TC program's), whose
	// ancillary values (VLAN tag in metadata, packet type) are known only
	// at run time; set by translate for a ContextSKB* context.
	skb bool
}

// KnownByte says the bits of Mask at offset Off are those of Value.
type KnownByte struct {
	Off         uint32
	Mask, Value uint8
}

// Byte is a fully known byte.
func Byte(off uint32, value uint8) KnownByte { return KnownByte{Off: off, Mask: 0xff, Value: value} }

// Bits is a byte of which only the bits of mask are known.
func Bits(off uint32, mask, value uint8) KnownByte {
	return KnownByte{Off: off, Mask: mask, Value: value & mask}
}

// Transport is a transport protocol whose header a shape holds whole.
type Transport struct {
	Proto     uint8  // IP protocol number
	HeaderLen uint32 // least header length
}

// The transports of IPv4Shape and IPv6Shape.
var (
	UDP = Transport{Proto: 17, HeaderLen: 8}
	TCP = Transport{Proto: 6, HeaderLen: 20}
)

// IPv4Shape: an untagged Ethernet frame of IPv4 without options (version
// and IHL 0x45), not a fragment (MF and the offset clear), whose protocol
// is l4's, with the three headers whole.
func IPv4Shape(l4 Transport) Shape {
	return Shape{MinLen: 14 + 20 + l4.HeaderLen, Bytes: []KnownByte{
		Byte(12, 0x08), Byte(13, 0x00), Byte(14, 0x45), Bits(20, 0x3f, 0), Byte(21, 0), Byte(23, l4.Proto),
	}}
}

// IPv6Shape: an untagged Ethernet frame of IPv6 (version 6) whose next
// header is l4's, with the three headers whole.
func IPv6Shape(l4 Transport) Shape {
	return Shape{MinLen: 14 + 40 + l4.HeaderLen, Bytes: []KnownByte{
		Byte(12, 0x86), Byte(13, 0xdd), Bits(14, 0xf0, 0x60), Byte(20, l4.Proto),
	}}
}

func (s Shape) check() error {
	seen := map[uint32]bool{}
	for _, b := range s.Bytes {
		if uint64(b.Off)+1 > uint64(s.MinLen) {
			return fmt.Errorf("shape: known byte at %d lies past the least length %d", b.Off, s.MinLen)
		}
		if seen[b.Off] {
			return fmt.Errorf("shape: byte %d given twice", b.Off)
		}
		seen[b.Off] = true
	}
	return nil
}

// inBounds says whether size bytes at off lie inside every packet of s.
func (s Shape) inBounds(off uint32, size int) bool {
	return uint64(off)+uint64(size) <= uint64(s.MinLen)
}

// load is what a load of size bytes at off gives on a packet of s (when
// the packet holds them), big-endian as classic BPF loads.
func (s Shape) load(off uint32, size int) bits {
	v := bits{unknown: 0}
	for i := range uint32(size) {
		b := bits{unknown: 0xff}
		for _, k := range s.Bytes {
			if k.Off == off+i {
				b = bits{val: uint32(k.Value & k.Mask), unknown: uint32(^k.Mask)}
			}
		}
		v = bits{val: v.val<<8 | b.val, unknown: v.unknown<<8 | b.unknown}
	}
	return v
}

// bits is a 32-bit value of which some bits are known (a tnum, as the
// kernel's verifier calls it): the bits of unknown may be anything, the
// others are those of val.
type bits struct{ val, unknown uint32 }

var anything = bits{unknown: ^uint32(0)}

func constant(v uint32) bits { return bits{val: v} }

func (b bits) isConst() bool { return b.unknown == 0 }

// join is what is known of a value that is a or b.
func join(a, b bits) bits {
	u := a.unknown | b.unknown | (a.val ^ b.val)
	return bits{val: a.val &^ u, unknown: u}
}

// alu is what is known of A after op with an operand of which v is known;
// ok false when the operation ends the program (division by zero).
func alu(op bpf.ALUOp, a, v bits) (bits, bool) {
	if (op == bpf.ALUOpDiv || op == bpf.ALUOpMod) && v.isConst() && v.val == 0 {
		return anything, false
	}
	if a.isConst() && v.isConst() {
		return constant(aluResult(op, a.val, v.val)), true
	}
	switch op {
	case bpf.ALUOpAdd:
		// The kernel's tnum_add: the carries out of unknown bits are
		// unknown. It keeps X bounded where libpcap adds two header
		// lengths (tcp[((tcp[12] & 0xf0) >> 2):4]), so an indirect load
		// there can still dispatch on X's few values.
		sm, sv := a.val+v.val, a.unknown+v.unknown
		u := (sm + sv) ^ sm | a.unknown | v.unknown
		return bits{val: sm &^ u, unknown: u}, true
	case bpf.ALUOpAnd:
		// A bit is a known 0 where either is a known 0.
		zero := (^a.val &^ a.unknown) | (^v.val &^ v.unknown)
		u := (a.unknown | v.unknown) &^ zero
		return bits{val: a.val & v.val &^ u, unknown: u}, true
	case bpf.ALUOpOr:
		one := a.val | v.val
		u := (a.unknown | v.unknown) &^ one
		return bits{val: one &^ u, unknown: u}, true
	case bpf.ALUOpShiftLeft, bpf.ALUOpShiftRight:
		if !v.isConst() {
			return anything, true
		}
		return bits{val: aluResult(op, a.val, v.val), unknown: aluResult(op, a.unknown, v.val)}, true
	}
	return anything, true
}

// aluResult is classic BPF's arithmetic (shifts by 32 or more give 0).
func aluResult(op bpf.ALUOp, a, v uint32) uint32 {
	switch op {
	case bpf.ALUOpAdd:
		return a + v
	case bpf.ALUOpSub:
		return a - v
	case bpf.ALUOpMul:
		return a * v
	case bpf.ALUOpDiv:
		return a / v
	case bpf.ALUOpMod:
		return a % v
	case bpf.ALUOpOr:
		return a | v
	case bpf.ALUOpAnd:
		return a & v
	case bpf.ALUOpXor:
		return a ^ v
	case bpf.ALUOpShiftLeft:
		if v >= 32 {
			return 0
		}
		return a << v
	case bpf.ALUOpShiftRight:
		if v >= 32 {
			return 0
		}
		return a >> v
	}
	return a
}

// outcome is a jump's direction on every packet, when it is known.
type outcome int

const (
	eitherWay outcome = iota
	alwaysTrue
	alwaysFalse
)

// decide says which way cond goes for A (as known) against v.
func decide(cond bpf.JumpTest, a bits, v uint32) outcome {
	lo, hi := a.val, a.val|a.unknown
	var isTrue, isFalse bool
	switch cond {
	case bpf.JumpEqual, bpf.JumpNotEqual:
		differs := (a.val^v)&^a.unknown != 0
		isTrue, isFalse = a.isConst() && a.val == v, differs
		if cond == bpf.JumpNotEqual {
			isTrue, isFalse = isFalse, isTrue
		}
	case bpf.JumpGreaterThan:
		isTrue, isFalse = lo > v, hi <= v
	case bpf.JumpGreaterOrEqual:
		isTrue, isFalse = lo >= v, hi < v
	case bpf.JumpLessThan:
		isTrue, isFalse = hi < v, lo >= v
	case bpf.JumpLessOrEqual:
		isTrue, isFalse = hi <= v, lo > v
	case bpf.JumpBitsSet, bpf.JumpBitsNotSet:
		isTrue, isFalse = a.val&v != 0, (a.val|a.unknown)&v == 0
		if cond == bpf.JumpBitsNotSet {
			isTrue, isFalse = isFalse, isTrue
		}
	}
	switch {
	case isTrue:
		return alwaysTrue
	case isFalse:
		return alwaysFalse
	}
	return eitherWay
}

// machine is what is known of classic BPF's registers and scratch memory
// at one instruction, over every path that reaches it.
type machine struct {
	reached bool
	a, x    bits
	m       [16]bits
}

func (s *machine) merge(from machine) {
	if !s.reached {
		*s = from
		return
	}
	s.a, s.x = join(s.a, from.a), join(s.x, from.x)
	for i := range s.m {
		s.m[i] = join(s.m[i], from.m[i])
	}
}

// Specialize returns a classic program with the same result as prog on
// every packet of shape s, without the work s makes needless: loads of
// known bytes become constants, jumps that go one way on every such
// packet become unconditional, an indirect load whose X is known becomes
// an absolute one, code no path reaches and values no one reads go. It is
// constant propagation over what a packet of s holds; classic BPF only
// jumps forward, so one pass in order sees every path into an instruction
// before the instruction.
func Specialize(prog []bpf.Instruction, s Shape) ([]bpf.Instruction, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if _, err := reachable(prog); err != nil {
		return nil, err
	}
	_, out, err := propagate(prog, s)
	if err != nil {
		return nil, err
	}
	return compact(out, s), nil
}

// propagate is Specialize's analysis: what is known at each instruction
// (in), and each instruction rewritten with it (nil where unreached).
func propagate(prog []bpf.Instruction, s Shape) ([]machine, []bpf.Instruction, error) {
	n := len(prog)
	in := make([]machine, n)
	out := make([]bpf.Instruction, n) // rewritten, nil where unreached
	in[0] = machine{reached: true}    // scratch memory starts zeroed: known
	edge := func(from, to int, st machine) {
		if to <= from || to >= n {
			panic(fmt.Sprintf("classic BPF jump %d -> %d", from, to)) // reachable checked
		}
		in[to].merge(st)
	}
	for i, ins := range prog {
		st := in[i]
		if !st.reached {
			continue
		}
		if ind, ok := ins.(bpf.LoadIndirect); ok && st.x.isConst() && uint64(ind.Off)+uint64(st.x.val) <= 0xffffffff {
			ins = bpf.LoadAbsolute{Off: ind.Off + st.x.val, Size: ind.Size}
		}
		if ax, ok := ins.(bpf.ALUOpX); ok && st.x.isConst() {
			if (ax.Op == bpf.ALUOpDiv || ax.Op == bpf.ALUOpMod) && st.x.val == 0 {
				ins = bpf.RetConstant{Val: 0}
			} else {
				ins = bpf.ALUOpConstant{Op: ax.Op, Val: st.x.val}
			}
		}
		if jx, ok := ins.(bpf.JumpIfX); ok && st.x.isConst() {
			ins = bpf.JumpIf{Cond: jx.Cond, Val: st.x.val, SkipTrue: jx.SkipTrue, SkipFalse: jx.SkipFalse}
		}
		next := i + 1
		switch in := ins.(type) {
		case bpf.LoadAbsolute:
			st.a = s.load(in.Off, in.Size)
			if st.a.isConst() && s.inBounds(in.Off, in.Size) {
				ins = bpf.LoadConstant{Dst: bpf.RegA, Val: st.a.val}
			}
		case bpf.LoadIndirect:
			st.a = anything
		case bpf.LoadMemShift:
			b := s.load(in.Off, 1)
			st.x = bits{val: (b.val & 0xf) * 4, unknown: (b.unknown & 0xf) * 4}
			if st.x.isConst() && s.inBounds(in.Off, 1) {
				ins = bpf.LoadConstant{Dst: bpf.RegX, Val: st.x.val}
			}
		case bpf.LoadConstant:
			st.set(in.Dst, constant(in.Val))
		case bpf.LoadScratch:
			if in.N < 0 || in.N > 15 {
				return nil, nil, fmt.Errorf("classic BPF instruction %d: scratch slot %d out of range", i, in.N)
			}
			st.set(in.Dst, st.m[in.N])
			if v := st.m[in.N]; v.isConst() {
				ins = bpf.LoadConstant{Dst: in.Dst, Val: v.val}
			}
		case bpf.StoreScratch:
			if in.N < 0 || in.N > 15 {
				return nil, nil, fmt.Errorf("classic BPF instruction %d: scratch slot %d out of range", i, in.N)
			}
			st.m[in.N] = st.get(in.Src)
		case bpf.LoadExtension:
			st.a = anything
			if v, ok := s.extension(in.Num); ok {
				st.a = constant(v)
				ins = bpf.LoadConstant{Dst: bpf.RegA, Val: v}
			}
		case bpf.ALUOpConstant:
			a, ok := alu(in.Op, st.a, constant(in.Val))
			if !ok {
				ins = bpf.RetConstant{Val: 0}
				next = -1
				break
			}
			st.a = a
			if a.isConst() {
				ins = bpf.LoadConstant{Dst: bpf.RegA, Val: a.val}
			}
		case bpf.ALUOpX:
			st.a, _ = alu(in.Op, st.a, st.x) // X not known here: the division stays
		case bpf.NegateA:
			if st.a.isConst() {
				st.a = constant(-st.a.val)
				ins = bpf.LoadConstant{Dst: bpf.RegA, Val: st.a.val}
			} else {
				st.a = anything
			}
		case bpf.TAX:
			st.x = st.a
		case bpf.TXA:
			st.a = st.x
		case bpf.Jump:
			edge(i, i+1+int(in.Skip), st)
			next = -1
		case bpf.JumpIf:
			onTrue, onFalse := i+1+int(in.SkipTrue), i+1+int(in.SkipFalse)
			switch decide(in.Cond, st.a, in.Val) {
			case alwaysTrue:
				ins = bpf.Jump{Skip: uint32(in.SkipTrue)}
				edge(i, onTrue, st)
			case alwaysFalse:
				ins = bpf.Jump{Skip: uint32(in.SkipFalse)}
				edge(i, onFalse, st)
			default:
				t, f := st, st
				switch in.Cond { // what the way taken says of A
				case bpf.JumpEqual:
					t.a = constant(in.Val)
				case bpf.JumpNotEqual:
					f.a = constant(in.Val)
				}
				edge(i, onTrue, t)
				edge(i, onFalse, f)
			}
			next = -1
		case bpf.JumpIfX:
			edge(i, i+1+int(in.SkipTrue), st)
			edge(i, i+1+int(in.SkipFalse), st)
			next = -1
		case bpf.RetA:
			if st.a.isConst() {
				ins = bpf.RetConstant{Val: st.a.val}
			}
			next = -1
		case bpf.RetConstant:
			next = -1
		default:
			return nil, nil, fmt.Errorf("classic BPF instruction %d: unsupported instruction %T", i, ins)
		}
		out[i] = ins
		if next >= 0 {
			edge(i, next, st)
		}
	}
	return in, out, nil
}

func (st *machine) set(r bpf.Register, v bits) {
	if r == bpf.RegX {
		st.x = v
	} else {
		st.a = v
	}
}

func (st *machine) get(r bpf.Register) bits {
	if r == bpf.RegX {
		return st.x
	}
	return st.a
}

// Liveness of classic BPF's state, one bit each: A, X, M[0..15].
const (
	liveA = 1 << iota
	liveX
	liveM0
)

// effects are what an instruction reads and writes, and whether it can
// be dropped when nothing reads what it writes (it cannot end the
// program on any packet of s).
func effects(ins bpf.Instruction, s Shape) (uses, defs uint32, pure bool) {
	reg := func(r bpf.Register) uint32 {
		if r == bpf.RegX {
			return liveX
		}
		return liveA
	}
	switch in := ins.(type) {
	case bpf.LoadAbsolute:
		return 0, liveA, s.inBounds(in.Off, in.Size)
	case bpf.LoadIndirect:
		return liveX, liveA, false
	case bpf.LoadMemShift:
		return 0, liveX, s.inBounds(in.Off, 1)
	case bpf.LoadConstant:
		return 0, reg(in.Dst), true
	case bpf.LoadScratch:
		return liveM0 << in.N, reg(in.Dst), true
	case bpf.StoreScratch:
		return reg(in.Src), liveM0 << in.N, true
	case bpf.LoadExtension:
		return 0, liveA, true
	case bpf.ALUOpConstant:
		return liveA, liveA, !((in.Op == bpf.ALUOpDiv || in.Op == bpf.ALUOpMod) && in.Val == 0)
	case bpf.ALUOpX:
		return liveA | liveX, liveA, in.Op != bpf.ALUOpDiv && in.Op != bpf.ALUOpMod
	case bpf.NegateA:
		return liveA, liveA, true
	case bpf.TAX:
		return liveA, liveX, true
	case bpf.TXA:
		return liveX, liveA, true
	case bpf.JumpIf:
		return liveA, 0, false
	case bpf.JumpIfX:
		return liveA | liveX, 0, false
	case bpf.RetA:
		return liveA, 0, false
	}
	return 0, 0, false // Jump, RetConstant
}

// liveIn is, for each instruction, what some path from it reads before
// writing it: liveA, liveX, liveM0<<n.
func liveIn(prog []bpf.Instruction) []uint32 {
	live := make([]uint32, len(prog)+1)
	for i := len(prog) - 1; i >= 0; i-- {
		var out uint32
		for _, t := range targets(prog[i], i) {
			out |= live[min(t, len(prog))]
		}
		uses, defs, _ := effects(prog[i], Shape{})
		live[i] = uses | out&^defs
	}
	return live[:len(prog)]
}

// targets are where ins at i goes next.
func targets(ins bpf.Instruction, i int) []int {
	switch in := ins.(type) {
	case bpf.Jump:
		return []int{i + 1 + int(in.Skip)}
	case bpf.JumpIf:
		return []int{i + 1 + int(in.SkipTrue), i + 1 + int(in.SkipFalse)}
	case bpf.JumpIfX:
		return []int{i + 1 + int(in.SkipTrue), i + 1 + int(in.SkipFalse)}
	case bpf.RetA, bpf.RetConstant:
		return nil
	}
	return []int{i + 1}
}

// compact drops what Specialize left unreached (nil), what writes values
// no one reads, and jumps to the next instruction left, and renumbers the
// jumps. It works backwards: jumps go forwards, so what follows an
// instruction is settled first.
func compact(prog []bpf.Instruction, s Shape) []bpf.Instruction {
	n := len(prog)
	keep := make([]bool, n)
	liveIn := make([]uint32, n)
	// nextKept[i] is the first kept instruction at or after i: where a
	// jump to i lands once the dropped ones are gone.
	nextKept := make([]int, n+1)
	nextKept[n] = n
	for i := n - 1; i >= 0; i-- {
		ins := prog[i]
		nextKept[i] = nextKept[i+1]
		if ins == nil {
			continue
		}
		var liveOut uint32
		for _, t := range targets(ins, i) {
			liveOut |= liveIn[t]
		}
		uses, defs, pure := effects(ins, s)
		switch {
		case pure && defs&liveOut == 0:
			liveIn[i] = liveOut // dropped: it changes nothing anyone sees
			continue
		case isJump(ins) && nextKept[targets(ins, i)[0]] == nextKept[i+1]:
			liveIn[i] = liveOut // a jump to where it would fall anyway
			continue
		}
		keep[i] = true
		liveIn[i] = uses | liveOut&^defs
		nextKept[i] = i
	}
	newIndex := make([]int, n+1)
	k := 0
	for i := range n {
		newIndex[i] = k
		if keep[i] {
			k++
		}
	}
	newIndex[n] = k
	skip := func(from, to int) int { return newIndex[nextKept[to]] - newIndex[from] - 1 }
	var out []bpf.Instruction
	for i, ins := range prog {
		if !keep[i] {
			continue
		}
		switch in := ins.(type) {
		case bpf.Jump:
			in.Skip = uint32(skip(i, i+1+int(in.Skip)))
			ins = in
		case bpf.JumpIf:
			in.SkipTrue, in.SkipFalse = uint8(skip(i, i+1+int(in.SkipTrue))), uint8(skip(i, i+1+int(in.SkipFalse)))
			ins = in
		case bpf.JumpIfX:
			in.SkipTrue, in.SkipFalse = uint8(skip(i, i+1+int(in.SkipTrue))), uint8(skip(i, i+1+int(in.SkipFalse)))
			ins = in
		}
		out = append(out, ins)
	}
	return out
}

func isJump(ins bpf.Instruction) bool {
	_, ok := ins.(bpf.Jump)
	return ok
}
