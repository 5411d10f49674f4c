// Package filter turns tcpdump filter expressions into code an XDP program
// can run: libpcap compiles the expression to classic BPF, and Translate
// turns classic BPF into eBPF (cilium/ebpf's asm) with the same result for
// every packet, Specialize narrows it to a frame shape the caller has
// checked, and Splice puts it where a loaded program's C code calls it.
//
// Classic BPF semantics kept exactly (golang.org/x/net/bpf's VM is the
// reference the tests compare against): a load past the end of the packet,
// or a division or modulo by zero in X, ends the program with 0 ("no
// match"); shifts by 32 or more give 0; scratch memory starts zeroed.
package filter

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// Register use in the code Translate makes. R1-R5 are free for the
// caller's epilogue (helper calls clobber them); R6-R9 survive calls.
const (
	RegCtx = asm.R6 // the xdp_md context, set by the code's prologue
	// RegResult holds the filter's return value (0: no match, else the
	// number of bytes to keep) when the epilogue runs.
	RegResult = asm.R0
)

// registers is where the generated code keeps each of its values, and
// whether it may call helpers (which clobber R1-R5) and use the stack.
type registers struct {
	ctx, data, dataEnd, a, x, tmp, tmp2 asm.Register
	helpers                             bool
}

// ownRegisters are Translate's: a function or a program of its own. X
// lives in R9 so that it survives the helper calls of indirect loads and
// of the packet length (A is what those write, so it needs no saving).
var ownRegisters = registers{ctx: RegCtx, data: asm.R7, dataEnd: asm.R8, a: asm.R2, x: asm.R9, tmp: asm.R4, tmp2: asm.R5, helpers: true}

// inlineRegisters are TranslateInline's: only those a call clobbers (the
// context arrives in R1, which then holds the packet start; R0 holds its
// end until the result replaces it).
var inlineRegisters = registers{ctx: asm.R1, data: asm.R1, dataEnd: asm.R0, a: asm.R2, x: asm.R3, tmp: asm.R4, tmp2: asm.R5}

// maxPacketOffset bounds every computed load offset so the verifier can
// prove the pointer arithmetic safe. XDP's linear data is never this long,
// so an offset past it is out of bounds anyway and gives "no match".
const maxPacketOffset = 0x3fff

const scratchBase = -64 // M[0..15] at R10-64 .. R10-4

// loadBuffer is the stack slot, below the scratch memory, where
// bpf_xdp_load_bytes puts what an indirect load reads.
const loadBuffer = scratchBase - 8

// Translate returns eBPF instructions that evaluate the classic program on
// the packet of the XDP context in R1, for packets of the given shape
// (Shape{} for any packet). The code ends by falling into epilogue with the
// result in RegResult and the context in RegCtx; the epilogue must end the
// program or tail-call. With asm.Return() alone as the epilogue, the code
// is a BPF function of ctx returning the result. A long filter's jumps may
// reach past 16-bit offsets: the whole program the code ends up in must go
// through LongJumps before it loads.
func Translate(prog []bpf.RawInstruction, shape Shape, epilogue asm.Instructions) (asm.Instructions, error) {
	if len(epilogue) == 0 {
		return nil, fmt.Errorf("no epilogue")
	}
	return translate(prog, shape, ownRegisters, ContextXDP, epilogue)
}

// ErrUsesScratch is TranslateInline's refusal of a program that uses
// classic BPF's scratch memory, which it would keep in the caller's stack.
var ErrUsesScratch = errors.New("the filter uses scratch memory: inline code has no stack of its own")

// ErrNeedsHelper is TranslateInline's refusal of a program that reads the
// packet at an offset computed at run time that may take too many values
// to branch on (an indirect load whose X has more than maxDispatchBits
// unknown bits) or takes the packet's length other than to compare it with
// a constant. Without CAP_PERFMON the verifier refuses adding a
// register to a packet pointer ("pointer arithmetic with it prohibited for
// !root": only immediates may be added, checked on kernel 6.18) and
// subtracting one pointer from another, so those take a helper call
// (bpf_xdp_load_bytes, bpf_xdp_get_buff_len), which clobbers R1-R5 and
// needs a stack buffer: Translate's code, not inline code.
var ErrNeedsHelper = errors.New("the filter reads the packet at an offset computed at run time, or its length: inline code can make no helper call")

// TranslateInline returns eBPF instructions that evaluate the classic
// program on the packet of the XDP context in R1, for packets of the given
// shape (Shape{} for any packet), and leave the result in
// RegResult (R0), using only R0-R5 and no stack: everything a BPF function
// call may clobber, so the code can stand in place of a call to a function
// of ctx that returns the result (loader.LoadCapture), without the call.
// The code ends by falling through to what follows it.
func TranslateInline(prog []bpf.RawInstruction, shape Shape) (asm.Instructions, error) {
	// A no-op ends the code: its jumps to the result need a target.
	return translateInline(prog, shape, ContextXDP)
}

func translateInline(prog []bpf.RawInstruction, shape Shape, ctx Context) (asm.Instructions, error) {
	return translate(prog, shape, inlineRegisters, ctx, asm.Instructions{asm.Mov.Reg(RegResult, RegResult)})
}

func translate(prog []bpf.RawInstruction, shape Shape, r registers, ctx Context, epilogue asm.Instructions) (asm.Instructions, error) {
	insns, ok := bpf.Disassemble(prog)
	if !ok {
		return nil, fmt.Errorf("classic BPF program has instructions that cannot be decoded")
	}
	if len(insns) == 0 {
		return nil, fmt.Errorf("empty classic BPF program")
	}
	if _, err := reachable(insns); err != nil {
		return nil, err
	}
	shape.skb = ctx != ContextXDP
	insns, err := Specialize(insns, shape)
	if err != nil {
		return nil, err
	}
	reach, err := reachable(insns)
	if err != nil {
		return nil, fmt.Errorf("specialized program: %w", err)
	}
	known, _, err := propagate(insns, shape)
	if err != nil {
		return nil, fmt.Errorf("specialized program: %w", err)
	}
	t := &translator{r: r, ctx: ctx, shape: shape, live: liveIn(insns), lenCompare: lengthCompares(insns, reach), known: known}
	if ctx == ContextSKB {
		// A length compare against data_end sees only the skb's linear
		// part; classic BPF's len is the whole packet (skb->len).
		clear(t.lenCompare)
	}
	dataOff, endOff := ctx.bounds()
	if r.ctx == r.data {
		// The end first: loading the start overwrites the context.
		t.emit(
			asm.LoadMem(r.dataEnd, r.ctx, endOff, asm.Word), // data_end
			asm.LoadMem(r.data, r.ctx, dataOff, asm.Word),   // data
		)
		if usesScratch(insns, reach) {
			return nil, ErrUsesScratch
		}
	} else {
		t.emit(
			asm.Mov.Reg(r.ctx, asm.R1),
			asm.LoadMem(r.data, r.ctx, dataOff, asm.Word),   // data
			asm.LoadMem(r.dataEnd, r.ctx, endOff, asm.Word), // data_end
		)
	}
	if ctx == ContextXDP && inShape(insns, reach, shape) {
		// One check of the shape's least length, which the verifier needs
		// to learn it (the pointers were loaded afresh), covers every
		// load inside it: what made the shape already checked it.
		t.emit(
			asm.Mov.Reg(r.tmp2, r.data),
			asm.Add.Imm(r.tmp2, int32(shape.frameLen(shape.MinLen))),
			asm.JGT.Reg(r.tmp2, r.dataEnd, t.fail()),
		)
	}
	// Zero what some path reads before writing: classic BPF starts A, X
	// and scratch memory at zero, the verifier refuses reads of what was
	// never written. Only that: most filters write A first and use no
	// scratch memory, and these would otherwise run on every packet.
	entry := t.live[0]
	if entry&liveA != 0 {
		t.emit(asm.Mov.Imm32(r.a, 0))
	}
	if entry&liveX != 0 {
		t.emit(asm.Mov.Imm32(r.x, 0))
	}
	for n := range 16 {
		if entry&(liveM0<<n) != 0 {
			t.emit(asm.StoreImm(asm.R10, int16(scratchBase+4*n), 0, asm.Word))
		}
	}
	for i, ins := range insns {
		if !reach[i] || t.lenCompare[i] == compared {
			continue
		}
		t.label = label(i)
		if t.lenCompare[i] == comparesLength {
			t.compareLength(i, insns[i+1].(bpf.JumpIf))
			continue
		}
		if err := t.translate(i, ins); err != nil {
			return nil, fmt.Errorf("classic BPF instruction %d (%v): %w", i, ins, err)
		}
	}
	if t.failUsed {
		t.label = labelFail
		t.emit(asm.Mov.Imm32(RegResult, 0), asm.Ja.Label(labelResult))
	}
	epi := append(asm.Instructions(nil), epilogue...)
	epi[0] = epi[0].WithSymbol(labelResult)
	return append(t.out, epi...), nil
}

// usesScratch says whether a reachable instruction loads or stores scratch
// memory.
func usesScratch(insns []bpf.Instruction, reach []bool) bool {
	for i, ins := range insns {
		switch ins.(type) {
		case bpf.LoadScratch, bpf.StoreScratch:
			if reach[i] {
				return true
			}
		}
	}
	return false
}

// inShape says whether a reachable load lies inside the shape's least
// length.
func inShape(insns []bpf.Instruction, reach []bool, s Shape) bool {
	for i, ins := range insns {
		switch in := ins.(type) {
		case bpf.LoadAbsolute:
			if reach[i] && s.inBounds(in.Off, in.Size) {
				return true
			}
		case bpf.LoadMemShift:
			if reach[i] && s.inBounds(in.Off, 1) {
				return true
			}
		}
	}
	return false
}

type translator struct {
	r        registers
	ctx      Context
	shape    Shape
	out      asm.Instructions
	label    string // symbol for the next emitted instruction
	failUsed bool
	live     []uint32  // liveIn of each instruction
	known    []machine // what is known of A, X and M at each instruction
	// lenCompare marks the loads of the packet length that only feed a
	// comparison with a constant, and those comparisons.
	lenCompare []lengthUse
}

// lengthUse marks an instruction of a length comparison.
type lengthUse uint8

const (
	notLength      lengthUse = iota
	comparesLength           // ld #pktlen, followed by a jump on A against k
	compared                 // that jump
)

// lengthCompares finds `ld #pktlen; j<op> #k` where A is read by neither
// target and only the load leads to the jump: the comparison can be done
// on packet pointers (data + k against data_end), which the verifier
// allows without CAP_PERFMON, with no length in a register. It is what
// libpcap makes of `greater`, `less` and `len < k`, and it costs 3
// instructions, not a helper call.
func lengthCompares(insns []bpf.Instruction, reach []bool) []lengthUse {
	out := make([]lengthUse, len(insns))
	targeted := make([]bool, len(insns)+1)
	for i, ins := range insns {
		if !reach[i] {
			continue
		}
		for _, n := range targets(ins, i) {
			if n != i+1 {
				targeted[min(n, len(insns))] = true
			}
		}
	}
	live := liveIn(insns)
	for i, ins := range insns {
		ext, ok := ins.(bpf.LoadExtension)
		if !ok || ext.Num != bpf.ExtLen || !reach[i] || i+1 >= len(insns) || targeted[i+1] {
			continue
		}
		j, ok := insns[i+1].(bpf.JumpIf)
		// Past linearAtLeast a frame may go on in later buffers, which
		// data_end does not cover (xdp.frags): bpf_xdp_get_buff_len.
		if !ok || uint64(j.Val)+tagLen >= linearAtLeast {
			continue
		}
		switch j.Cond {
		case bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual, bpf.JumpLessThan, bpf.JumpLessOrEqual:
		default:
			continue // equality would compare pointers for equality: refused
		}
		onTrue, onFalse := i+2+int(j.SkipTrue), i+2+int(j.SkipFalse)
		if onTrue >= len(insns) || onFalse >= len(insns) || (live[onTrue]|live[onFalse])&liveA != 0 {
			continue
		}
		out[i], out[i+1] = comparesLength, compared
	}
	return out
}

// compareLength translates `ld #pktlen` at i and the jump after it into a
// comparison of data + n with data_end: len > k holds exactly when data +
// k + 1 <= data_end, len >= k when data + k <= data_end.
func (t *translator) compareLength(i int, j bpf.JumpIf) {
	onTrue, onFalse := label(i+2+int(j.SkipTrue)), label(i+2+int(j.SkipFalse))
	n := int32(t.shape.frameLen(j.Val)) // len >= n goes to atLeast
	atLeast, shorter := onTrue, onFalse
	switch j.Cond {
	case bpf.JumpGreaterThan:
		n++
	case bpf.JumpLessThan:
		atLeast, shorter = onFalse, onTrue
	case bpf.JumpLessOrEqual:
		n++
		atLeast, shorter = onFalse, onTrue
	}
	if atLeast == shorter { // no test: both ways go to the same place
		t.emit(asm.Ja.Label(atLeast))
		return
	}
	t.emit(asm.Mov.Reg(t.r.tmp2, t.r.data), asm.Add.Imm(t.r.tmp2, n))
	next := label(i + 2)
	switch {
	case shorter == next:
		t.emit(asm.JLE.Reg(t.r.tmp2, t.r.dataEnd, atLeast))
	default:
		t.emit(asm.JGT.Reg(t.r.tmp2, t.r.dataEnd, shorter))
		if atLeast != next {
			t.emit(asm.Ja.Label(atLeast))
		}
	}
}

func (t *translator) emit(ins ...asm.Instruction) {
	for _, in := range ins {
		if t.label != "" {
			in = in.WithSymbol(t.label)
			t.label = ""
		}
		t.out = append(t.out, in)
	}
}

// Jump labels are symbols, which must be unique in a whole program: the
// code may be a function inside a larger one (loader.LoadCapture), so they
// carry a prefix no C function uses.
const (
	labelFail   = "xdpscan_filter_fail"
	labelResult = "xdpscan_filter_result"
)

func label(i int) string { return fmt.Sprintf("xdpscan_filter_c%d", i) }

func (t *translator) fail() string {
	t.failUsed = true
	return labelFail
}

// loadPacket loads size bytes at off of the filter's packet (plus X when
// indirect) into dst, in host order, or jumps to fail when they lie past
// the packet's end.
func (t *translator) loadPacket(dst asm.Register, indirect bool, off uint32, size int) error {
	if off > maxPacketOffset {
		t.emit(asm.Ja.Label(t.fail()))
		return nil
	}
	if indirect {
		return t.loadIndirect(dst, off, size)
	}
	checked := t.shape.inBounds(off, size)
	if t.shape.Tagged && off < tagOffset && off+uint32(size) > tagOffset {
		// The load straddles the hidden tag: a byte at a time, each from
		// where it lies in the frame.
		for k := range uint32(size) {
			b := dst
			if k > 0 {
				b = t.r.tmp
			}
			if err := t.loadFrame(b, t.shape.frameOffset(off+k), 1, checked); err != nil {
				return err
			}
			if k > 0 {
				t.emit(asm.LSh.Imm32(dst, 8), asm.Or.Reg32(dst, b))
			}
		}
		return nil
	}
	return t.loadFrame(dst, t.shape.frameOffset(off), size, checked)
}

// loadFrame loads size bytes at off of the frame into dst, in host order,
// or jumps to fail when they lie past its end; checked: the shape's length
// check up front covers them.
func (t *translator) loadFrame(dst asm.Register, off uint32, size int, checked bool) error {
	sz := asm.Word
	switch size {
	case 1:
		sz = asm.Byte
	case 2:
		sz = asm.Half
	}
	if off > maxPacketOffset {
		t.emit(asm.Ja.Label(t.fail()))
		return nil
	}
	if checked && t.ctx == ContextXDP {
		t.emit(asm.LoadMem(dst, t.r.data, int16(off), sz)) // checked up front
		t.hostOrder(dst, sz)
		return nil
	}
	if t.ctx != ContextXDP {
		return t.loadSKB(dst, off, size, sz)
	}
	if off+uint32(size) > linearAtLeast {
		// Past what every frame holds in its linear part: an xdp.frags
		// frame may hold it in a later buffer.
		if !t.r.helpers {
			return ErrNeedsHelper
		}
		t.emit(asm.Mov.Imm(asm.R2, int32(off)))
		t.helperLoad(dst, size)
		return nil
	}
	// A constant offset goes in the load itself, behind one check of
	// data+off+size against data_end: 4 instructions, not 6.
	t.emit(
		asm.Mov.Reg(t.r.tmp2, t.r.data),
		asm.Add.Imm(t.r.tmp2, int32(off)+int32(size)),
		asm.JGT.Reg(t.r.tmp2, t.r.dataEnd, t.fail()),
		asm.LoadMem(dst, t.r.data, int16(off), sz),
	)
	t.hostOrder(dst, sz)
	return nil
}

// loadIndirect loads size bytes at X + off of the filter's packet.
// The offset is known only at run time. Without CAP_PERFMON the verifier
// refuses adding a register to a packet pointer (even a bounded one), so
// bpf_xdp_load_bytes (Linux 5.18) copies the bytes to the stack, checking
// the bounds itself. It clobbers R1-R5: X lives in R9, and the result is
// written after the call.
func (t *translator) loadIndirect(dst asm.Register, off uint32, size int) error {
	if !t.r.helpers {
		return ErrNeedsHelper
	}
	t.emit(
		asm.Mov.Reg32(asm.R2, t.r.x),
		asm.Add.Imm(asm.R2, int32(off)),
		// The helper takes a u32 offset: X + off past 32 bits must not wrap.
		asm.JGT.Imm(asm.R2, maxPacketOffset, t.fail()),
	)
	if t.shape.Tagged {
		n := len(t.out)
		high, load := fmt.Sprintf("xdpscan_filter_tag%d_high", n), fmt.Sprintf("xdpscan_filter_tag%d_load", n)
		t.emit(asm.JGE.Imm(asm.R2, tagOffset, high))
		if size > 1 {
			// X + off < 12 < X + off + size: a byte at a time, each from
			// where it lies in the frame, into the load buffer.
			straddle := fmt.Sprintf("xdpscan_filter_tag%d_straddle", n)
			done := fmt.Sprintf("xdpscan_filter_tag%d_done", n)
			t.emit(asm.JGT.Imm(asm.R2, int32(tagOffset-size), straddle), asm.Ja.Label(load))
			t.label = straddle
			t.emit(asm.StoreMem(asm.R10, offsetSlot, asm.R2, asm.DWord))
			for k := range size {
				t.emit(
					asm.LoadMem(asm.R2, asm.R10, offsetSlot, asm.DWord),
					asm.Add.Imm(asm.R2, int32(k)),
					asm.JLT.Imm(asm.R2, tagOffset, fmt.Sprintf("xdpscan_filter_tag%d_b%d", n, k)),
					asm.Add.Imm(asm.R2, tagLen),
				)
				t.label = fmt.Sprintf("xdpscan_filter_tag%d_b%d", n, k)
				t.emit(
					asm.Mov.Reg(asm.R1, t.r.ctx),
					asm.Mov.Reg(asm.R3, asm.R10),
					asm.Add.Imm(asm.R3, int32(loadBuffer+k)),
					asm.Mov.Imm(asm.R4, 1),
					asm.FnXdpLoadBytes.Call(),
					asm.JNE.Imm(asm.R0, 0, t.fail()),
				)
			}
			t.emit(asm.Ja.Label(done))
			t.label = high
			t.emit(asm.Add.Imm(asm.R2, tagLen))
			t.label = load
			t.helperCall(size)
			t.label = done
			t.bufferLoad(dst, size)
			return nil
		}
		t.emit(asm.Ja.Label(load))
		t.label = high
		t.emit(asm.Add.Imm(asm.R2, tagLen))
		t.label = load
	}
	t.helperLoad(dst, size)
	return nil
}

// loadSKB loads size bytes at off of an skb into dst, in host order, or
// jumps to fail when they lie past its end. An skb's linear part
// (data..data_end) may end anywhere past the link header: drivers that
// receive into pages pull only the headers (eth_get_headlen), and a packet
// socket's large frame is sent with 14 linear bytes (a 9014-byte UDP frame
// sent on the testbed's veth failed `udp` at offset 23). So a direct load
// that the linear part does not hold goes on with bpf_skb_load_bytes, as
// classic BPF on an AF_PACKET socket reads past it (skb_header_pointer),
// instead of failing. A is kept across the call when the load is X's.
func (t *translator) loadSKB(dst asm.Register, off uint32, size int, sz asm.Size) error {
	if !t.r.helpers {
		return ErrNeedsHelper
	}
	n := len(t.out)
	linear, done := fmt.Sprintf("xdpscan_filter_skb%d_linear", n), fmt.Sprintf("xdpscan_filter_skb%d_done", n)
	t.emit(
		asm.Mov.Reg(t.r.tmp2, t.r.data),
		asm.Add.Imm(t.r.tmp2, int32(off)+int32(size)),
		asm.JLE.Reg(t.r.tmp2, t.r.dataEnd, linear),
	)
	if dst != t.r.a {
		t.emit(asm.StoreMem(asm.R10, offsetSlot, t.r.a, asm.DWord))
	}
	t.emit(asm.Mov.Imm(asm.R2, int32(off)))
	t.helperLoad(dst, size)
	if dst != t.r.a {
		t.emit(asm.LoadMem(t.r.a, asm.R10, offsetSlot, asm.DWord))
	}
	t.emit(asm.Ja.Label(done))
	t.label = linear
	t.emit(asm.LoadMem(dst, t.r.data, int16(off), sz))
	t.hostOrder(dst, sz)
	t.label = done
	// A no-op carries the label: the next instruction may have its own.
	t.emit(asm.Mov.Reg(dst, dst))
	return nil
}

// offsetSlot is the stack slot, below the load buffer, where a straddling
// indirect load keeps its offset across its helper calls.
const offsetSlot = loadBuffer - 8

// helperLoad loads size bytes at the frame offset in R2 into dst, in host
// order, with bpf_xdp_load_bytes, or jumps to fail when they lie past the
// frame's end.
func (t *translator) helperLoad(dst asm.Register, size int) {
	t.helperCall(size)
	t.bufferLoad(dst, size)
}

// helperCall copies size bytes at the frame offset in R2 to the load
// buffer, or jumps to fail when they lie past the frame's end.
func (t *translator) helperCall(size int) {
	t.emit(
		asm.Mov.Reg(asm.R1, t.r.ctx),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, loadBuffer),
		asm.Mov.Imm(asm.R4, int32(size)),
		t.ctx.loadBytes().Call(),
		asm.JNE.Imm(asm.R0, 0, t.fail()), // past the end: classic BPF returns 0
	)
}

// bufferLoad loads size bytes from the load buffer into dst, in host order.
func (t *translator) bufferLoad(dst asm.Register, size int) {
	sz := asm.Word
	switch size {
	case 1:
		sz = asm.Byte
	case 2:
		sz = asm.Half
	}
	t.emit(asm.LoadMem(dst, asm.R10, loadBuffer, sz))
	t.hostOrder(dst, sz)
}

// maxDispatchBits bounds the unknown bits of X for which an indirect load
// branches to one constant-offset load per value of X (2^n of them, 2^n-1
// bit tests, log2 of them run per packet) rather than calling
// bpf_xdp_load_bytes. libpcap's X is nearly always a header length: 4
// unknown bits (4*(ip[0]&0xf)), 5 for the sum of two. Measured on kernel
// 6.18 for the unspecialized `tcp port 443` (BenchmarkFilterTCPPort443,
// two indirect loads a packet): 17 ns a run calling the helper, 8 ns
// branching on X, 7 ns with the test for X = 20 first (loadDispatch), as
// with pkt += X before (which the verifier refuses without CAP_PERFMON).
const maxDispatchBits = 5

func bits32(v uint32) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// loadDispatch translates the indirect load at i, whose X is one of the
// few values x allows, into a test of each unknown bit of X leading to a
// load at a constant offset: the verifier without CAP_PERFMON allows only
// constants added to packet pointers. Each leaf goes on to instruction
// i+1, which follows (an indirect load falls through).
func (t *translator) loadDispatch(i int, x bits, off uint32, size int) (dispatchErr error) {
	var unknown []uint32
	for b := uint32(1); b != 0; b <<= 1 {
		if x.unknown&b != 0 {
			unknown = append(unknown, b)
		}
	}
	sub := func(k int, v uint32) string { return fmt.Sprintf("xdpscan_filter_x%d_%d_%x", i, k, v) }
	// X of 4*(k&0xf) (ldxb 4*([k]&0xf)) is an IPv4 header length, 20 on
	// nearly every packet: one test sends it straight to its load, ahead of
	// the 4 bit tests (8 ns a run for the unspecialized `tcp port 443`
	// with the bit tests alone, 7 with this, as pkt += X was).
	const ipv4HeaderLen = 20
	likely := -1
	if x.val == 0 && x.unknown == 0x3c {
		likely = len(t.out)
		t.emit(asm.JEq.Imm(t.r.x, ipv4HeaderLen, "")) // its target is set below
	}
	leafSym := ""
	leaves := 1 << len(unknown)
	leaf := 0
	var gen func(k int, v uint32)
	gen = func(k int, v uint32) {
		if k == len(unknown) {
			leaf++
			if x.val|v == ipv4HeaderLen && likely >= 0 {
				if t.label == "" {
					t.label = sub(k, v)
				}
				leafSym = t.label
			}
			o := uint64(off) + uint64(x.val|v)
			if o > maxPacketOffset {
				t.emit(asm.Ja.Label(t.fail()))
				return
			}
			if err := t.loadPacket(t.r.a, false, uint32(o), size); err != nil && dispatchErr == nil {
				dispatchErr = err
			}
			if leaf < leaves { // the last one falls through
				t.emit(asm.Ja.Label(label(i + 1)))
			}
			return
		}
		b := unknown[k]
		t.emit(asm.JSet.Imm(t.r.x, int32(b), sub(k+1, v|b)))
		gen(k+1, v)
		t.label = sub(k+1, v|b)
		gen(k+1, v|b)
	}
	gen(0, 0)
	if likely >= 0 {
		t.out[likely] = t.out[likely].WithReference(leafSym)
	}
	return dispatchErr
}

// hostOrder turns a loaded big-endian value into host order.
func (t *translator) hostOrder(dst asm.Register, sz asm.Size) {
	if sz != asm.Byte {
		t.emit(asm.HostTo(asm.BE, dst, sz))
	}
}

func (t *translator) translate(i int, ins bpf.Instruction) error {
	switch in := ins.(type) {
	case bpf.LoadAbsolute:
		return t.loadPacket(t.r.a, false, in.Off, in.Size)
	case bpf.LoadIndirect:
		if x := t.known[i].x; bits32(x.unknown) <= maxDispatchBits {
			return t.loadDispatch(i, x, in.Off, in.Size)
		}
		return t.loadPacket(t.r.a, true, in.Off, in.Size)
	case bpf.LoadMemShift:
		if err := t.loadPacket(t.r.x, false, in.Off, 1); err != nil {
			return err
		}
		t.emit(asm.And.Imm32(t.r.x, 0xf), asm.LSh.Imm32(t.r.x, 2))
	case bpf.LoadConstant:
		t.emit(asm.Mov.Imm32(t.reg(in.Dst), int32(in.Val)))
	case bpf.LoadScratch:
		if in.N < 0 || in.N > 15 {
			return fmt.Errorf("scratch slot %d out of range", in.N)
		}
		t.emit(asm.LoadMem(t.reg(in.Dst), asm.R10, int16(scratchBase+4*in.N), asm.Word))
	case bpf.StoreScratch:
		if in.N < 0 || in.N > 15 {
			return fmt.Errorf("scratch slot %d out of range", in.N)
		}
		t.emit(asm.StoreMem(asm.R10, int16(scratchBase+4*in.N), t.reg(in.Src), asm.Word))
	case bpf.LoadExtension:
		return t.loadExtension(in.Num)
	case bpf.ALUOpConstant:
		return t.aluConst(in.Op, in.Val)
	case bpf.ALUOpX:
		return t.aluX(in.Op)
	case bpf.NegateA:
		t.emit(asm.Neg.Imm32(t.r.a, 0))
	case bpf.Jump:
		if in.Skip != 0 {
			t.emit(asm.Ja.Label(label(i + 1 + int(in.Skip))))
		}
	case bpf.JumpIf:
		return t.jump(i, in.Cond, false, in.Val, in.SkipTrue, in.SkipFalse)
	case bpf.JumpIfX:
		return t.jump(i, in.Cond, true, 0, in.SkipTrue, in.SkipFalse)
	case bpf.RetA:
		t.emit(asm.Mov.Reg32(RegResult, t.r.a), asm.Ja.Label(labelResult))
	case bpf.RetConstant:
		t.emit(asm.Mov.Imm32(RegResult, int32(in.Val)), asm.Ja.Label(labelResult))
	case bpf.TAX:
		t.emit(asm.Mov.Reg32(t.r.x, t.r.a))
	case bpf.TXA:
		t.emit(asm.Mov.Reg32(t.r.a, t.r.x))
	default:
		return fmt.Errorf("unsupported instruction %T", ins)
	}
	return nil
}

func (t *translator) reg(r bpf.Register) asm.Register {
	if r == bpf.RegX {
		return t.r.x
	}
	return t.r.a
}

var aluOps = map[bpf.ALUOp]asm.ALUOp{
	bpf.ALUOpAdd: asm.Add, bpf.ALUOpSub: asm.Sub, bpf.ALUOpMul: asm.Mul, bpf.ALUOpDiv: asm.Div,
	bpf.ALUOpOr: asm.Or, bpf.ALUOpAnd: asm.And, bpf.ALUOpShiftLeft: asm.LSh, bpf.ALUOpShiftRight: asm.RSh,
	bpf.ALUOpMod: asm.Mod, bpf.ALUOpXor: asm.Xor,
}

func (t *translator) aluConst(op bpf.ALUOp, val uint32) error {
	eop, ok := aluOps[op]
	if !ok {
		return fmt.Errorf("unknown ALU op %v", op)
	}
	switch {
	case (op == bpf.ALUOpDiv || op == bpf.ALUOpMod) && val == 0:
		t.emit(asm.Ja.Label(t.fail())) // classic BPF: the program returns 0
	case (op == bpf.ALUOpShiftLeft || op == bpf.ALUOpShiftRight) && val >= 32:
		t.emit(asm.Mov.Imm32(t.r.a, 0))
	default:
		t.emit(eop.Imm32(t.r.a, int32(val)))
	}
	return nil
}

func (t *translator) aluX(op bpf.ALUOp) error {
	eop, ok := aluOps[op]
	if !ok {
		return fmt.Errorf("unknown ALU op %v", op)
	}
	switch op {
	case bpf.ALUOpDiv, bpf.ALUOpMod:
		t.emit(asm.JEq.Imm32(t.r.x, 0, t.fail()), eop.Reg32(t.r.a, t.r.x))
	case bpf.ALUOpShiftLeft, bpf.ALUOpShiftRight:
		// eBPF masks the shift count; classic semantics give 0 past 31.
		skip := fmt.Sprintf("xdpscan_filter_shift%d", len(t.out))
		done := skip + "done"
		t.emit(
			asm.JGT.Imm32(t.r.x, 31, skip),
			eop.Reg32(t.r.a, t.r.x),
			asm.Ja.Label(done),
			asm.Mov.Imm32(t.r.a, 0).WithSymbol(skip),
			asm.Mov.Reg32(t.r.a, t.r.a).WithSymbol(done),
		)
	default:
		t.emit(eop.Reg32(t.r.a, t.r.x))
	}
	return nil
}

// inverse is the jump taken exactly when op's is not.
var inverse = map[asm.JumpOp]asm.JumpOp{
	asm.JEq: asm.JNE, asm.JNE: asm.JEq, asm.JGT: asm.JLE, asm.JLE: asm.JGT, asm.JGE: asm.JLT, asm.JLT: asm.JGE,
}

func (t *translator) jump(i int, cond bpf.JumpTest, x bool, val uint32, skipTrue, skipFalse uint8) error {
	ops := map[bpf.JumpTest]asm.JumpOp{
		bpf.JumpEqual: asm.JEq, bpf.JumpNotEqual: asm.JNE, bpf.JumpGreaterThan: asm.JGT,
		bpf.JumpLessThan: asm.JLT, bpf.JumpGreaterOrEqual: asm.JGE, bpf.JumpLessOrEqual: asm.JLE,
		bpf.JumpBitsSet: asm.JSet, bpf.JumpBitsNotSet: asm.JSet,
	}
	op, ok := ops[cond]
	if !ok {
		return fmt.Errorf("unknown jump condition %v", cond)
	}
	onTrue, onFalse := label(i+1+int(skipTrue)), label(i+1+int(skipFalse))
	if cond == bpf.JumpBitsNotSet {
		onTrue, onFalse = onFalse, onTrue
	}
	// The next instruction is reached by falling through: no jump to it.
	next := label(i + 1)
	if inv, ok := inverse[op]; ok && onTrue == next {
		op, onTrue, onFalse = inv, onFalse, onTrue
	}
	if x {
		t.emit(op.Reg32(t.r.a, t.r.x, onTrue))
	} else {
		t.emit(op.Imm32(t.r.a, int32(val), onTrue))
	}
	if onFalse != next {
		t.emit(asm.Ja.Label(onFalse))
	}
	return nil
}

// reachable marks the instructions some path reaches (the verifier refuses
// unreachable code) and checks every jump lands inside the program.
func reachable(insns []bpf.Instruction) ([]bool, error) {
	reach := make([]bool, len(insns))
	var visit func(i int) error
	visit = func(i int) error {
		for ; i < len(insns); i++ {
			if reach[i] {
				return nil
			}
			reach[i] = true
			next := []int{}
			switch in := insns[i].(type) {
			case bpf.RetA, bpf.RetConstant:
				return nil
			case bpf.Jump:
				next = append(next, i+1+int(in.Skip))
			case bpf.JumpIf:
				next = append(next, i+1+int(in.SkipTrue), i+1+int(in.SkipFalse))
			case bpf.JumpIfX:
				next = append(next, i+1+int(in.SkipTrue), i+1+int(in.SkipFalse))
			default:
				continue
			}
			for _, n := range next {
				if n >= len(insns) {
					return fmt.Errorf("instruction %d jumps past the end of the program", i)
				}
				if err := visit(n); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("the program can run past its last instruction without returning")
	}
	return reach, visit(0)
}
