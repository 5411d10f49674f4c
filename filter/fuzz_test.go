package filter

import (
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// generatedFilters combines primitives with and/or/not and parentheses.
func generatedFilters(rng *rand.Rand, n int) []string {
	prims := []string{"tcp", "udp", "icmp", "ip6", "arp", "vlan", "port 53", "port 443", "src port 80",
		"host 198.18.0.7", "net 198.19.0.0/24", "ip[8] > 40", "tcp[13] & 2 != 0", "len < 80", "ip[2:2] % 5 == 1",
		"icmp[0] == 3", "ether multicast", "ip proto 47", "udp[4:2] > 20", "tcp[(tcp[12] >> 2)] == 71"}
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || rng.IntN(3) == 0 {
			p := prims[rng.IntN(len(prims))]
			if rng.IntN(4) == 0 {
				return "not " + p
			}
			return p
		}
		op := []string{" and ", " or "}[rng.IntN(2)]
		return "(" + gen(depth-1) + op + gen(depth-1) + ")"
	}
	out := make([]string, n)
	for i := range out {
		out[i] = gen(3)
	}
	return out
}

func TestTranslateAgreesOnGeneratedFilters(t *testing.T) {
	bpftest.Require(t)
	rng := rand.New(rand.NewPCG(3, 4))
	pkts := packets(rng)
	for _, expr := range generatedFilters(rng, 80) {
		raw, err := Compile(expr, 262144)
		if err != nil {
			continue // libpcap refuses some combinations (e.g. vlan inside or): fine
		}
		vm := bpftest.ClassicVM(t, raw)
		h, inline := load(t, raw, false, Shape{}), load(t, raw, true, Shape{})
		for _, p := range pkts {
			want, _ := vm.Run(p)
			if got := h.run(t, p); got != uint32(want) {
				t.Fatalf("%q on % x: eBPF %d, classic %d", expr, p, got, want)
			}
			if inline == nil {
				continue
			}
			if got := inline.run(t, p); got != uint32(want) {
				t.Fatalf("%q on % x: inline eBPF %d, classic %d", expr, p, got, want)
			}
		}
	}
}

// FuzzTranslate runs fuzzed packets through fuzz-chosen real-world filters
// in both the classic VM and the translated eBPF.
func FuzzTranslate(f *testing.F) {
	bpftest.Require(f)
	type pair struct {
		vm     *bpf.VM
		h      *harness
		inline *harness // nil when the filter uses scratch memory
	}
	var progs []pair
	for _, expr := range realWorldFilters {
		raw, err := Compile(expr, 262144)
		if err != nil {
			f.Fatal(err)
		}
		vm := bpftest.ClassicVM(f, raw)
		progs = append(progs, pair{vm, load(f, raw, false, Shape{}), load(f, raw, true, Shape{})})
	}
	for i, p := range packets(rand.New(rand.NewPCG(5, 6)))[:40] {
		f.Add(uint8(i), p)
	}
	f.Fuzz(func(t *testing.T, which uint8, pkt []byte) {
		if len(pkt) < 14 || len(pkt) > 3000 {
			t.Skip("BPF_PROG_RUN takes 14 bytes to a page of XDP data")
		}
		p := progs[int(which)%len(progs)]
		want, _ := p.vm.Run(pkt)
		if got := p.h.run(t, pkt); got != uint32(want) {
			t.Fatalf("%q on % x: eBPF %d, classic %d", realWorldFilters[int(which)%len(progs)], pkt, got, want)
		}
		if p.inline == nil {
			return
		}
		if got := p.inline.run(t, pkt); got != uint32(want) {
			t.Fatalf("%q on % x: inline eBPF %d, classic %d", realWorldFilters[int(which)%len(progs)], pkt, got, want)
		}
	})
}

// TestTranslateRejectsWhatXDPCannotRun: Linux ancillary loads (vlan tag,
// protocol from skb metadata) have no XDP meaning; a clear error, not a
// wrong answer.
func TestTranslateRejectsWhatXDPCannotRun(t *testing.T) {
	prog, err := bpf.Assemble([]bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtProto}, bpf.RetA{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Translate(prog, Shape{}, nil); err == nil {
		t.Fatal("no epilogue accepted")
	}
	_, err = Translate(prog, Shape{}, asm.Instructions{asm.Return()})
	if err == nil || !strings.Contains(err.Error(), "extension") {
		t.Fatalf("err %v, want an extension error", err)
	}
	loop, _ := bpf.Assemble([]bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegA, Val: 1}})
	if _, err := Translate(loop, Shape{}, asm.Instructions{asm.Return()}); err == nil || !strings.Contains(err.Error(), "past its last") {
		t.Fatalf("err %v, want 'runs past its last instruction'", err)
	}
}
