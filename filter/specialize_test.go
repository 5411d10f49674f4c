package filter

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// testShapes are the capture program's frame shapes and some others: a
// tag, a byte known in part, nothing known.
var testShapes = []struct {
	name  string
	shape Shape
}{
	{"nothing known", Shape{}},
	{"IPv4 UDP", IPv4Shape(UDP)},
	{"IPv4 TCP", IPv4Shape(TCP)},
	{"IPv6 UDP", IPv6Shape(UDP)},
	{"IPv6 TCP", IPv6Shape(TCP)},
	{"VLAN tag, 18 bytes", Shape{MinLen: 18, Bytes: []KnownByte{Byte(12, 0x81), Byte(13, 0x00)}}},
	{"IHL 5 of unknown version, 34 bytes", Shape{MinLen: 34, Bytes: []KnownByte{Bits(14, 0x0f, 0x05)}}},
}

// conform makes pkt a packet of shape s: zeros up to its least length,
// then the known bits set.
func conform(pkt []byte, s Shape) []byte {
	out := append([]byte(nil), pkt...)
	for uint32(len(out)) < s.MinLen {
		out = append(out, 0)
	}
	for _, b := range s.Bytes {
		out[b.Off] = out[b.Off]&^b.Mask | b.Value
	}
	return out
}

func specialize(t testing.TB, expr string, s Shape) (orig, spec []bpf.Instruction) {
	t.Helper()
	raw, err := Compile(expr, 262144)
	if err != nil {
		t.Fatal(err)
	}
	orig = mustDisassemble(t, raw)
	if spec, err = Specialize(orig, s); err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	return orig, spec
}

// specializedVMs is the filter and its specialization, each in a classic
// VM, which also checks the specialized program is well formed.
func specializedVMs(t testing.TB, expr string, s Shape) (orig, spec []bpf.Instruction, want, got *bpf.VM) {
	t.Helper()
	orig, spec = specialize(t, expr, s)
	want, err := bpf.NewVM(orig)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	if got, err = bpf.NewVM(spec); err != nil {
		t.Fatalf("%q: the specialized program is not well formed: %v\n%v", expr, err, spec)
	}
	return orig, spec, want, got
}

// TestSpecializeAgreesWithClassicVM is Specialize's differential test: for
// every filter, shape and packet of the shape, the specialized program
// (run by the classic VM, which also checks it is well formed) gives the
// original's result, and it is never longer.
func TestSpecializeAgreesWithClassicVM(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pkts := packets(rng)
	exprs := slices.Concat(realWorldFilters, generatedFilters(rng, 80))
	for _, ts := range testShapes {
		t.Run(ts.name, func(t *testing.T) {
			var before, after int
			for _, expr := range exprs {
				if _, err := Compile(expr, 262144); err != nil {
					continue // libpcap refuses some generated combinations
				}
				orig, spec, want, got := specializedVMs(t, expr, ts.shape)
				if len(spec) > len(orig) {
					t.Errorf("%q: specialized program grew from %d to %d instructions", expr, len(orig), len(spec))
				}
				before, after = before+len(orig), after+len(spec)
				for _, p := range pkts {
					p = conform(p, ts.shape)
					w, _ := want.Run(p)
					if g, _ := got.Run(p); g != w {
						t.Fatalf("%q on % x: specialized %d, original %d\n%v", expr, p, g, w, spec)
					}
				}
			}
			t.Logf("%d filters: %d instructions -> %d", len(exprs), before, after)
		})
	}
}

// TestSpecializeSettlesProtocolTests: what the capture program's filters
// become for the frames its classification knows.
func TestSpecializeSettlesProtocolTests(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		shape      Shape
		want       string // the specialized program, as x/net/bpf prints it
	}{
		{"the testbed flood's filter", "udp and dst port 9", IPv4Shape(UDP), "[ldh [36] jneq #9,1 ret #262144 ret #0]"},
		{"the same on IPv6", "udp and dst port 9", IPv6Shape(UDP), "[ldh [56] jneq #9,1 ret #262144 ret #0]"},
		{"the wrong protocol", "udp and dst port 9", IPv4Shape(TCP), "[ret #0]"},
		{"the protocol alone", "tcp", IPv4Shape(TCP), "[ret #262144]"},
		{"the wrong IP version", "ip6 and udp port 53", IPv4Shape(UDP), "[ret #0]"},
		{"a tag the shape rules out", "vlan and tcp", IPv6Shape(TCP), "[ret #0]"},
		{"the IHL known: an absolute load", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", IPv4Shape(TCP),
			"[ldb [47] and #18 jneq #2,1 ret #262144 ret #0]"},
		{"an offset from the packet stays indirect", "tcp[(tcp[12] >> 2):4] = 0x48545450", IPv4Shape(TCP),
			"[ldb [46] rsh #2 add #20 tax ld [x + 14] jneq #1213486160,1 ret #262144 ret #0]"},
		{"a load past the least length stays", "ip[2:2] - 1 > 10", Shape{MinLen: 14, Bytes: []KnownByte{Byte(12, 8), Byte(13, 0)}},
			"[ldh [16] sub #1 jle #10,1 ret #262144 ret #0]"},
		{"nothing known", "udp", Shape{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, spec := specialize(t, tc.expr, tc.shape)
			want := tc.want
			if want == "" {
				want = strings.Join(strings.Fields(fmtInsns(orig)), " ")
			}
			if got := fmtInsns(spec); got != want {
				t.Fatalf("%q specialized: %s, want %s", tc.expr, got, want)
			}
		})
	}
}

func fmtInsns(insns []bpf.Instruction) string {
	var b strings.Builder
	b.WriteString("[")
	for i, in := range insns {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strings.Join(strings.Fields(in.(interface{ String() string }).String()), " "))
	}
	return b.String() + "]"
}

func TestSpecializeRejectsBadShapes(t *testing.T) {
	prog := []bpf.Instruction{bpf.RetConstant{Val: 1}}
	for _, tc := range []struct {
		name  string
		shape Shape
		want  string
	}{
		{"a known byte past the least length", Shape{MinLen: 14, Bytes: []KnownByte{Byte(14, 0x45)}}, "past the least length"},
		{"a byte given twice", Shape{MinLen: 14, Bytes: []KnownByte{Byte(12, 8), Bits(12, 0xf0, 0)}}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Specialize(prog, tc.shape); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzSpecialize runs fuzzed packets, made to fit a fuzz-chosen shape,
// through a fuzz-chosen filter and its specialization.
func FuzzSpecialize(f *testing.F) {
	type pair struct{ orig, spec *bpf.VM }
	progs := make([][]pair, len(testShapes))
	for s, ts := range testShapes {
		for _, expr := range realWorldFilters {
			_, _, a, b := specializedVMs(f, expr, ts.shape)
			progs[s] = append(progs[s], pair{a, b})
		}
	}
	for i, p := range packets(rand.New(rand.NewPCG(9, 10)))[:40] {
		f.Add(uint8(i), uint8(i/len(realWorldFilters)), p)
	}
	f.Fuzz(func(t *testing.T, which, shape uint8, pkt []byte) {
		s := int(shape) % len(testShapes)
		i := int(which) % len(realWorldFilters)
		p := conform(pkt, testShapes[s].shape)
		want, _ := progs[s][i].orig.Run(p)
		if got, _ := progs[s][i].spec.Run(p); got != want {
			t.Fatalf("%q for %s on % x: specialized %d, original %d", realWorldFilters[i], testShapes[s].name, p, got, want)
		}
	})
}

// TestKnownBitsAreSound: what decide, alu and join say of values known in
// part holds for every value that fits what is known, and a fully known
// value always settles a jump.
func TestKnownBitsAreSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	conds := []bpf.JumpTest{bpf.JumpEqual, bpf.JumpNotEqual, bpf.JumpGreaterThan, bpf.JumpLessThan,
		bpf.JumpGreaterOrEqual, bpf.JumpLessOrEqual, bpf.JumpBitsSet, bpf.JumpBitsNotSet}
	ops := []bpf.ALUOp{bpf.ALUOpAdd, bpf.ALUOpSub, bpf.ALUOpMul, bpf.ALUOpDiv, bpf.ALUOpOr, bpf.ALUOpAnd,
		bpf.ALUOpShiftLeft, bpf.ALUOpShiftRight, bpf.ALUOpMod, bpf.ALUOpXor}
	// Few unknown bits and small values, so that comparisons and equalities
	// come out both ways.
	randBits := func() bits {
		u := uint32(0)
		for range rng.IntN(4) {
			u |= 1 << rng.IntN(8)
		}
		if rng.IntN(8) == 0 {
			u = ^uint32(0)
		}
		if rng.IntN(8) == 1 { // sums that carry out of bit 31
			return bits{val: rng.Uint32() &^ u, unknown: u}
		}
		return bits{val: rng.Uint32N(300) &^ u, unknown: u}
	}
	sample := func(b bits) uint32 { return b.val | rng.Uint32()&b.unknown }
	fits := func(b bits, v uint32) bool { return v&^b.unknown == b.val }
	for range 20000 {
		a, x := randBits(), randBits()
		av, xv := sample(a), sample(x)
		cond, k := conds[rng.IntN(len(conds))], rng.Uint32N(300)
		if rng.IntN(2) == 0 {
			k = sample(a) // near A, for the equalities
		}
		want := jumpTaken(cond, av, k)
		switch decide(cond, a, k) {
		case alwaysTrue:
			if !want {
				t.Fatalf("decide(%v, %+v, %d) says always taken; not for A=%d", cond, a, k, av)
			}
		case alwaysFalse:
			if want {
				t.Fatalf("decide(%v, %+v, %d) says never taken; taken for A=%d", cond, a, k, av)
			}
		default:
			if a.isConst() {
				t.Fatalf("decide(%v, %d, %d) left a constant's jump open", cond, a.val, k)
			}
		}
		op := ops[rng.IntN(len(ops))]
		if r, ok := alu(op, a, x); ok {
			if (op == bpf.ALUOpDiv || op == bpf.ALUOpMod) && xv == 0 {
				continue // the program ends there: nothing to hold
			}
			if got := aluResult(op, av, xv); !fits(r, got) {
				t.Fatalf("alu(%v, %+v, %+v) = %+v; %d %v %d = %d does not fit", op, a, x, r, av, op, xv, got)
			}
			if a.isConst() && x.isConst() && !r.isConst() {
				t.Fatalf("alu(%v) of two constants is not a constant", op)
			}
		} else if !x.isConst() || x.val != 0 {
			t.Fatalf("alu(%v, %+v, %+v) says the program ends", op, a, x)
		}
		if j := join(a, x); !fits(j, av) || !fits(j, xv) {
			t.Fatalf("join(%+v, %+v) = %+v lost %d or %d", a, x, j, av, xv)
		}
	}
}

// jumpTaken is classic BPF's jump test, as the VM runs it.
func jumpTaken(cond bpf.JumpTest, a, k uint32) bool {
	switch cond {
	case bpf.JumpEqual:
		return a == k
	case bpf.JumpNotEqual:
		return a != k
	case bpf.JumpGreaterThan:
		return a > k
	case bpf.JumpLessThan:
		return a < k
	case bpf.JumpGreaterOrEqual:
		return a >= k
	case bpf.JumpLessOrEqual:
		return a <= k
	case bpf.JumpBitsSet:
		return a&k != 0
	}
	return a&k == 0
}
