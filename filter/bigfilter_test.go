package filter

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
	"github.com/xdpscan/xdpscan/internal/kfloor"
	"github.com/xdpscan/xdpscan/internal/testfilter"
	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// TestLongJumpFilterAgreesWithClassicVM runs a filter whose translation is
// longer than a 16-bit jump reaches (the early terms' jumps to the match,
// the first load's jump to "no match" at the end) against the classic VM,
// on frames that match early and late terms and that match none.
func TestLongJumpFilterAgreesWithClassicVM(t *testing.T) {
	bpftest.Require(t, kfloor.LongJumps)
	const n = 10_000
	raw := testfilter.AddressList(n)
	vm, err := bpf.NewVM(mustDisassemble(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	a := testfilter.AddressListAddr
	other := netip.MustParseAddr("198.19.255.1")
	frame := func(src, dst netip.Addr) []byte {
		return testpkt.Build(testpkt.Frame{Src: src, Dst: dst, L4: &layers.UDP{SrcPort: 1, DstPort: 2}, Payload: make([]byte, 8)})
	}
	frames := []struct {
		name  string
		data  []byte
		match bool
	}{
		{"source is the first term", frame(a(0), other), true},
		{"source is the last term", frame(a(n-1), other), true},
		{"destination is the first term", frame(other, a(0)), true},
		{"destination is the last term", frame(other, a(n-1)), true},
		{"destination is a middle term", frame(other, a(n/2)), true},
		{"no term", frame(other, other), false},
		{"just past the last term", frame(a(n), a(n)), false},
		{"cut before the source", frame(a(0), other)[:29], false},
		{"cut before the destination", frame(other, a(0))[:33], false},
	}
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	frames = append(frames, struct {
		name  string
		data  []byte
		match bool
	}{"ARP", arp, false})

	for _, v := range []struct {
		name   string
		inline bool
		shape  Shape
	}{{"own code", false, Shape{}}, {"inline", true, Shape{}}, {"inline, specialized for IPv4 UDP", true, IPv4Shape(UDP)}} {
		t.Run(v.name, func(t *testing.T) {
			var code asm.Instructions
			if v.inline {
				code, err = TranslateInline(raw, v.shape)
			} else {
				code, err = Translate(raw, v.shape, asm.Instructions{asm.Return()})
			}
			if err != nil {
				t.Fatal(err)
			}
			long, err := LongJumps(code)
			if err != nil {
				t.Fatal(err)
			}
			if gotols := countLongJumps(long); gotols == 0 {
				t.Fatalf("%d eBPF instructions and no long jump: the test does not test what it is for", len(code))
			} else {
				t.Logf("%d classic instructions, %d eBPF, %d after long jumps (%d gotol)", len(raw), len(code), len(long), gotols)
			}
			h := load(t, raw, v.inline, v.shape)
			for _, f := range frames {
				if !ofShape(f.data, v.shape) {
					continue
				}
				want, err := vm.Run(f.data)
				if err != nil {
					t.Fatal(err)
				}
				if (want != 0) != f.match {
					t.Fatalf("%s: the classic VM says %d: the frame is not what the test means", f.name, want)
				}
				if got := h.run(t, f.data); got != uint32(want) {
					t.Errorf("%s: eBPF %d, classic %d", f.name, got, want)
				}
			}
		})
	}
}

// ofShape says whether pkt is of shape s: the frames the code specialized
// for s is run on.
func ofShape(pkt []byte, s Shape) bool {
	if uint32(len(pkt)) < s.MinLen {
		return false
	}
	for _, b := range s.Bytes {
		if pkt[b.Off]&b.Mask != b.Value {
			return false
		}
	}
	return true
}

func countLongJumps(insns asm.Instructions) int {
	n := 0
	for _, ins := range insns {
		if ins.OpCode.Class() == asm.Jump32Class && ins.OpCode.JumpOp() == asm.Ja {
			n++
		}
	}
	return n
}

// TestLongJumps checks each kind of far jump LongJumps rewrites, run on
// both of its outcomes: a program whose first byte decides a jump over
// 40,000 instructions.
func TestLongJumps(t *testing.T) {
	bpftest.Require(t, kfloor.LongJumps)
	const far = 40_000
	tests := []struct {
		name  string
		jump  asm.Instruction // jumps to "far" when the first byte is 1
		gotol int
	}{
		{"unconditional", asm.Ja.Label("far"), 1},
		{"JSet, which has no opposite", asm.JSet.Imm(asm.R2, 1, "far"), 1},
		{"JEq", asm.JEq.Imm(asm.R2, 1, "far"), 1},
		{"JGT, 32-bit", asm.JGT.Imm32(asm.R2, 0, "far"), 1},
		{"JSGE, register", asm.JSGE.Reg(asm.R2, asm.R3, "far"), 1},
		{"near: left alone", asm.JEq.Imm(asm.R2, 1, "near"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			insns := asm.Instructions{
				asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // xdp_md.data
				asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // xdp_md.data_end
				asm.Mov.Reg(asm.R4, asm.R2),
				asm.Add.Imm(asm.R4, 1),
				asm.Mov.Imm(asm.R0, 0),
				asm.JLE.Reg(asm.R4, asm.R3, "long"),
				asm.Return(),
				asm.LoadMem(asm.R2, asm.R2, 0, asm.Byte).WithSymbol("long"),
				asm.Mov.Imm(asm.R3, 1),
			}
			if tc.name == "unconditional" {
				insns = append(insns, asm.JEq.Imm(asm.R2, 0, "fallthrough"))
			}
			// The way not taken runs through the filler and returns 2;
			// "far" and "near" return 3. Every block is reachable (the
			// verifier refuses code no path reaches) by a short jump on a
			// first byte never sent.
			insns = append(insns, tc.jump,
				asm.JEq.Imm(asm.R2, 7, "near").WithSymbol("fallthrough"),
				asm.Ja.Label("filler"),
				asm.Mov.Imm(asm.R0, 3).WithSymbol("near"),
				asm.Return(),
				asm.Mov.Imm(asm.R0, 2).WithSymbol("filler"))
			for range far {
				insns = append(insns, asm.Mov.Reg(asm.R0, asm.R0))
			}
			insns = append(insns,
				asm.JEq.Imm(asm.R2, 9, "far"),
				asm.Return(),
				asm.Mov.Imm(asm.R0, 3).WithSymbol("far"),
				asm.Return())
			long, err := LongJumps(insns)
			if err != nil {
				t.Fatal(err)
			}
			if got := countLongJumps(long); got != tc.gotol {
				t.Fatalf("%d gotol, want %d", got, tc.gotol)
			}
			var p *ebpf.Program
			capstest.WithEffective(t, documented, func() {
				p, err = ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: long, License: "Dual BSD/GPL"})
			})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer p.Close()
			for first, want := range map[byte]uint32{1: 3, 0: 2} {
				pkt := make([]byte, 64)
				pkt[0] = first
				got, err := p.Run(&ebpf.RunOptions{Data: pkt})
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("first byte %d: returned %d, want %d", first, got, want)
				}
			}
		})
	}
}

// TestLongJumpsRefusesTooLongPrograms: past the kernel's limit the error
// says so, not the verifier's log.
func TestLongJumpsRefusesTooLongPrograms(t *testing.T) {
	insns := make(asm.Instructions, MaxProgramInstructions+1)
	for i := range insns {
		insns[i] = asm.Mov.Reg(asm.R0, asm.R0)
	}
	_, err := LongJumps(insns)
	want := fmt.Sprintf("the program is %d eBPF instructions long, over the kernel's limit of 1000000", MaxProgramInstructions+1)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// hostList is `host A or host B or ...` (host: IPv4, ARP and RARP), the
// kind of filter whose compile time grows steepest with its length.
func hostList(kind string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "%s 198.18.%d.%d", kind, i/250, 1+i%250)
	}
	return b.String()
}

// TestCompileLimits: each input gives its exact error, or compiles; none
// panics (gopacket's wrapper panicked past 32,768 instructions).
func TestCompileLimits(t *testing.T) {
	mib := strings.Repeat("tcp or ", 1<<20/7+1)
	long := hostList("ip host", 2700) // 63,808 bytes: just under the limit
	tests := []struct {
		name    string
		expr    string
		most    int
		wantErr string
		wantLen int
	}{
		{"an expression of 1 MiB", mib, MaxInstructions, fmt.Sprintf("filter of %d bytes: at most 65536 bytes (64 KiB) are accepted, as libpcap's compile time grows steeply with length; capture with a shorter filter", len(mib)), 0},
		{"one byte over the limit", strings.Repeat(" ", MaxExpressionBytes) + "x", MaxInstructions, "filter of 65537 bytes: at most 65536 bytes (64 KiB) are accepted, as libpcap's compile time grows steeply with length; capture with a shorter filter", 0},
		{"a NUL byte", "tcp\x00or udp", MaxInstructions, `filter "tcp\x00or udp": contains a NUL byte`, 0},
		{"libpcap's syntax error", "tcp port", MaxInstructions, `filter "tcp port": can't parse filter expression: syntax error`, 0},
		{"a program over the limit", hostList("ip host", 300), 500, "compiles to 951 classic BPF instructions: at most 500 fit in the capture program; capture with a shorter filter", 0},
		{"just under the limit, more than 4096 instructions (gopacket's wrapper panicked)", long, MaxInstructions, "", 10551},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var raw []bpf.RawInstruction
			var err error
			start := time.Now()
			defer func() { t.Logf("%d bytes: %v", len(tc.expr), time.Since(start)) }()
			if tc.most == MaxInstructions {
				raw, err = Compile(tc.expr, 262144)
			} else {
				raw, err = compile(tc.expr, 262144, tc.most)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want a program", err)
			case tc.wantErr == "" && len(raw) != tc.wantLen:
				t.Fatalf("%d instructions, want %d", len(raw), tc.wantLen)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case err != nil && len(err.Error()) > 400:
				t.Fatalf("a %d-byte error message: it should not repeat the filter", len(err.Error()))
			}
		})
	}
}

// TestCompileAbandoned: a compile that takes seconds (300 host terms:
// libpcap's optimizer, ~1 s here) gives way to a cancelled context at
// once.
func TestCompileAbandoned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := CompileContext(ctx, hostList("host", 300), 262144)
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("returned after %v, want right after the 50 ms deadline", took)
	}
	if err == nil || err.Error() != "filter compilation abandoned: context deadline exceeded" {
		t.Fatalf("error %v", err)
	}
}
