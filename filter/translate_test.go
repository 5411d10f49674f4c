package filter

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/capstest"
	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// realWorldFilters are expressions people type into tcpdump, covering every
// classic instruction libpcap emits: absolute, indirect and MSH loads,
// scratch memory, every ALU op, every jump, len.
var realWorldFilters = []string{
	"", "tcp", "udp", "icmp", "ip", "ip6", "arp", "not ip", "icmp6", "vlan", "vlan and tcp", "vlan 100",
	"tcp port 443", "port 53", "udp port 53", "src port 53 and udp", "tcp and (port 80 or port 8080)",
	"host 198.18.0.1", "src host 198.19.0.1", "dst host 198.18.3.7", "net 198.18.0.0/16",
	"tcp port 443 and not src net 198.18.1.0/24", "ip host 198.18.0.1 and not port 22",
	"icmp[icmptype] == icmp-unreach", "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
	"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[13] == 18", "tcp[tcpflags] & tcp-rst != 0",
	"udp portrange 1000-2000", "tcp portrange 40000-40255", "ether host 02:00:00:00:00:01", "ether broadcast",
	"ether proto 0x88cc", "ip multicast", "ip proto 47", "greater 100", "less 64", "len > 100",
	"ip[8] < 64", "ip[6:2] & 0x1fff != 0", "ip[6:2] & 0x3fff != 0", "ip[2:2] > 576",
	"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "tcp[(tcp[12] >> 2):4] = 0x48545450",
	"len >= 60", "len == 60", "len != 74", "len - 14 > 50", "len & 1 == 0", "greater 100 and tcp", "less 60", "len <= 60 or udp",
	"ip[ip[0]&0xf:1] != 0", "ip[ip[9]] == 0", "ip[(ip[0] & 0xf) * 4:2] > 1000", "udp[udp[4:2] - 1] == 0",
	"ip6 and tcp", "ip6 and udp port 53", "ip6 host 2001:2::1", "ip6 net 2001:2::/48",
	"ip[0] & 0xf * 4 == 20", "ip[2:2] % 7 == 3", "ip[2:2] - 1 > 10", "ip[2:2] << 2 > 100",
	"ip[2:2] >> 1 < 30", "ip[2:2] ^ 0xff == 5", "ip[2:2] / 3 == 10", "ip[2:2] + ip[0] > 80",
	"ip[ip[0] & 0xf] == 0", "ip[2:2] * ip[8] > 1000", "(ip[2:2] | 3) & 0xfc == 40", "ip[2:2] / (ip[8] - 64) > 1",
	"ip[2:2] % (ip[9] - 6) == 0", "ip[2:2] << ip[9] > 0", "ip[2:2] >> (ip[8] - 30) == 0",
	"tcp and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0",
	"(tcp or udp) and not (port 22 or port 53) and net 198.18.0.0/15", "icmp or icmp6 or arp",
	"vlan and ip and udp", "vlan 10 and vlan 100",
}

// harness is a translated filter loaded as an XDP program whose epilogue
// stores the exact result in a map and returns XDP_PASS on a match.
type harness struct {
	prog   *ebpf.Program
	result *ebpf.Map
}

// clobbered is what the inline harness reports when the inline code
// changed a register or stack slot a call preserves: no filter returns it
// (libpcap's largest result is the snaplen, 262144).
const clobbered = 0xbadbad

// documented are the capabilities xdpscan's users hold to load programs:
// without CAP_PERFMON the verifier refuses pointer arithmetic with
// registers on packet pointers, pointer subtraction and NULL checks of
// packet pointers, so every test program is loaded with these alone and a
// translation that falls back on such a pattern fails its test.
var documented = []int{capstest.BPF, capstest.NetAdmin}

// load translates raw into an XDP program: as Translate's own code, or,
// with inline, as TranslateInline's code between a prologue that sets R6-R9
// and a stack slot and checks that they survived. It returns nil when
// inline code refuses a filter (scratch memory, or a helper call needed).
// The program is loaded holding only the documented capabilities.
func load(t testing.TB, raw []bpf.RawInstruction, inline bool, shape Shape) *harness {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	epilogue := asm.Instructions{
		asm.Mov.Reg(asm.R9, RegResult),
		asm.StoreImm(asm.R10, -72, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -72),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "done"),
		asm.StoreMem(asm.R0, 0, asm.R9, asm.Word),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("done"), // XDP_DROP: no match
		asm.JEq.Imm32(asm.R9, 0, "out"),
		asm.Mov.Imm(asm.R0, 2), // XDP_PASS: match
		asm.Return().WithSymbol("out"),
	}
	var insns asm.Instructions
	if inline {
		body, err := TranslateInline(raw, shape)
		if errors.Is(err, ErrUsesScratch) || errors.Is(err, ErrNeedsHelper) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		saved := []asm.Register{asm.R6, asm.R7, asm.R8, asm.R9}
		for i, r := range saved {
			insns = append(insns, asm.Mov.Imm(r, int32(0x1111*(i+1))))
		}
		insns = append(insns, asm.Mov.Imm(asm.R2, 0x5555), asm.StoreMem(asm.R10, -8, asm.R2, asm.DWord))
		insns = append(insns, body...)
		for i, r := range saved {
			insns = append(insns, asm.JNE.Imm(r, int32(0x1111*(i+1)), "clobbered"))
		}
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R10, -8, asm.DWord),
			asm.JNE.Imm(asm.R1, 0x5555, "clobbered"),
			asm.Ja.Label("kept"),
			asm.Mov.Imm(RegResult, clobbered).WithSymbol("clobbered"),
		)
		epilogue[0] = epilogue[0].WithSymbol("kept")
		insns = append(insns, epilogue...)
	} else {
		insns, err = Translate(raw, shape, epilogue)
		if err != nil {
			t.Fatal(err)
		}
	}
	var p *ebpf.Program
	capstest.WithEffective(t, documented, func() {
		p, err = ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: insns, License: "Dual BSD/GPL"})
	})
	if err != nil {
		t.Fatalf("load translated program with %s only: %v", capstest.Names(documented), err)
	}
	t.Cleanup(func() { p.Close() })
	return &harness{prog: p, result: m}
}

func (h *harness) run(t testing.TB, pkt []byte) uint32 {
	t.Helper()
	if err := h.result.Put(uint32(0), uint32(0xdeadbeef)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.prog.Run(&ebpf.RunOptions{Data: pkt}); err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	var v uint32
	if err := h.result.Lookup(uint32(0), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// packets is a corpus of crafted frames (each the tcpdump line it shows)
// plus mutations of them.
func packets(rng *rand.Rand) [][]byte {
	a := netip.MustParseAddr
	http := append([]byte("GET / HTTP/1.1\r\n"), make([]byte, 20)...)
	base := [][]byte{
		// 198.19.0.1.40001 > 198.18.0.7.443: Flags [S]
		testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")}),
		// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.]
		testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: testpkt.TCP(443, 40001, 1, 2, "SA")}),
		// 198.18.1.9.80 > 198.19.0.1.40002: Flags [R.]
		testpkt.Build(testpkt.Frame{Src: a("198.18.1.9"), Dst: a("198.19.0.1"), L4: testpkt.TCP(80, 40002, 0, 2, "RA")}),
		// 198.19.0.1.33000 > 198.18.0.1.80: Flags [P.], HTTP GET
		testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.1"), L4: testpkt.TCP(33000, 80, 5, 6, "PA"), Payload: http}),
		// 198.19.0.1.5353 > 198.18.0.53.53: UDP
		testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.53"), L4: &layers.UDP{SrcPort: 5353, DstPort: 53}, Payload: make([]byte, 30)}),
		// vlan 100, 198.19.0.1.1500 > 198.18.0.53.1500: UDP
		testpkt.Build(testpkt.Frame{VLANs: []uint16{100}, Src: a("198.19.0.1"), Dst: a("198.18.0.53"), L4: &layers.UDP{SrcPort: 1500, DstPort: 1500}}),
		// vlan 10, vlan 100, 198.19.0.1.40001 > 198.18.0.7.443: Flags [S]
		testpkt.Build(testpkt.Frame{VLANs: []uint16{10, 100}, Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: testpkt.TCP(40001, 443, 1, 0, "S")}),
		// 198.18.0.7 > 198.19.0.1: ICMP 198.18.0.7 udp port 53 unreachable
		testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, Payload: make([]byte, 28)}),
		// 198.19.0.1 > 198.18.0.7: ICMP echo request
		testpkt.Build(testpkt.Frame{Src: a("198.19.0.1"), Dst: a("198.18.0.7"), L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, Payload: make([]byte, 56)}),
		// IP (offset 8) 198.18.0.7 > 198.19.0.1: udp fragment
		testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), FragOffset: 1, Proto: layers.IPProtocolUDP, Payload: make([]byte, 40)}),
		// IP (ttl 30, proto GRE) 198.18.0.7 > 198.19.0.1
		testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), TTL: 30, Proto: 47, Payload: make([]byte, 200)}),
		// IP6 2001:2::1.5353 > 2001:2::1:7.53: UDP
		testpkt.Build(testpkt.Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: &layers.UDP{SrcPort: 5353, DstPort: 53}}),
		// IP6 (hbh) 2001:2::1:7.443 > 2001:2::1.40001: Flags [S.]
		testpkt.Build(testpkt.Frame{Src: a("2001:2::1:7"), Dst: a("2001:2::1"), IPv6Ext: []testpkt.Ext{testpkt.HopByHop()}, L4: testpkt.TCP(443, 40001, 1, 2, "SA")}),
		// IP6 2001:2::1 > 2001:2::1:7: ICMP6 echo request
		testpkt.Build(testpkt.Frame{Src: a("2001:2::1"), Dst: a("2001:2::1:7"), L4: &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, Payload: make([]byte, 8)}),
	}
	// ARP, Request who-has 198.19.0.2 tell 198.19.0.1; LLDP; broadcast
	arp := make([]byte, 60)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1})
	lldp := make([]byte, 60)
	copy(lldp, []byte{0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 0, 0, 0, 0, 1, 0x88, 0xcc})
	base = append(base, arp, lldp)

	out := append([][]byte(nil), base...)
	for _, b := range base {
		for n := 14; n < len(b); n += 1 + rng.IntN(7) {
			out = append(out, b[:n]) // truncated
		}
		for k := 0; k < 12; k++ { // a few flipped bytes
			m := append([]byte(nil), b...)
			for j := 0; j < 1+rng.IntN(3); j++ {
				m[rng.IntN(len(m))] = byte(rng.Uint32())
			}
			out = append(out, m)
		}
	}
	for k := 0; k < 60; k++ { // random bytes with an IPv4/IPv6/VLAN ethertype
		m := make([]byte, 14+rng.IntN(120))
		for j := range m {
			m[j] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint16(m[12:], []uint16{0x0800, 0x86dd, 0x8100, 0x0806}[k%4])
		out = append(out, m)
	}
	return out
}

// TestTranslateAgreesWithClassicVM is the differential test: for every
// filter and every packet, the eBPF result equals the classic VM's, for the
// code of Translate and of TranslateInline (which also must leave what a
// call preserves untouched); and for the code specialized for each shape,
// on packets of the shape (inline, or Translate's where inline code
// refuses the filter, as the loader does).
func TestTranslateAgreesWithClassicVM(t *testing.T) {
	bpftest.Require(t)
	pkts := packets(rand.New(rand.NewPCG(1, 2)))
	type variant struct {
		name   string
		inline bool
		shape  Shape
	}
	variants := []variant{{"own code", false, Shape{}}, {"inline", true, Shape{}}}
	for _, ts := range testShapes[1:] {
		variants = append(variants, variant{"specialized for " + ts.name, true, ts.shape})
	}
	for _, tc := range variants {
		t.Run(tc.name, func(t *testing.T) {
			disagreements, refused := 0, 0
			for _, expr := range realWorldFilters {
				raw, err := Compile(expr, 262144)
				if err != nil {
					t.Errorf("compile %q: %v", expr, err)
					continue
				}
				insns := mustDisassemble(t, raw)
				vm, err := bpf.NewVM(insns)
				if err != nil {
					t.Errorf("%q: reference VM refuses it: %v", expr, err)
					continue
				}
				h := load(t, raw, tc.inline, tc.shape)
				if h == nil {
					if !inlineMustRefuse(t, insns, tc.shape) {
						t.Errorf("%q: inline translation refused a filter that needs neither scratch memory nor a helper", expr)
					}
					refused++
					h = load(t, raw, false, tc.shape)
				}
				matched := 0
				for _, p := range pkts {
					p = conform(p, tc.shape)
					want, err := vm.Run(p)
					if err != nil {
						t.Fatalf("%q: VM: %v", expr, err)
					}
					got := h.run(t, p)
					if uint32(want) != got {
						disagreements++
						if disagreements < 10 {
							t.Errorf("%q on % x: eBPF %d, classic %d", expr, p, got, want)
						}
					}
					if got != 0 {
						matched++
					}
				}
				t.Logf("%-60q %4d instructions, matched %d/%d packets", expr, len(raw), matched, len(pkts))
			}
			if disagreements != 0 {
				t.Fatalf("%d disagreements", disagreements)
			}
			if tc.name == "inline" && (refused == 0 || refused == len(realWorldFilters)) {
				t.Fatalf("inline translation refused %d of %d filters: the scratch-memory cases are not both covered", refused, len(realWorldFilters))
			}
		})
	}
}

// inlineMustRefuse says whether the specialized program uses scratch
// memory, an indirect load or the packet length: what inline code may
// refuse (it keeps the length when only compared with a constant).
func inlineMustRefuse(t testing.TB, insns []bpf.Instruction, s Shape) bool {
	spec, err := Specialize(insns, s)
	if err != nil {
		t.Fatal(err)
	}
	reach := mustReach(t, spec)
	for i, ins := range spec {
		switch ins.(type) {
		case bpf.LoadIndirect, bpf.LoadExtension:
			if reach[i] {
				return true
			}
		}
	}
	return usesScratch(spec, reach)
}

func mustReach(t testing.TB, insns []bpf.Instruction) []bool {
	reach, err := reachable(insns)
	if err != nil {
		t.Fatal(err)
	}
	return reach
}

func mustDisassemble(t testing.TB, raw []bpf.RawInstruction) []bpf.Instruction {
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("cannot disassemble %v", raw)
	}
	return insns
}

func TestCompileErrorShowsLibpcapMessage(t *testing.T) {
	_, err := Compile("tcp port 99999", 262144)
	if err == nil {
		t.Fatal("bad filter compiled")
	}
	_, err = Compile("tcp and and udp", 262144)
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("err %v, want libpcap's syntax error", err)
	}
}

// TestTranslateScratchMemory: classic BPF reads a scratch slot it never
// stored as zero; the translation zeroes only the slots a program reads.
func TestTranslateScratchMemory(t *testing.T) {
	bpftest.Require(t)
	// 198.19.0.1.5353 > 198.18.0.53.53: UDP
	pkt := testpkt.Build(testpkt.Frame{Src: netip.MustParseAddr("198.19.0.1"), Dst: netip.MustParseAddr("198.18.0.53"),
		L4: &layers.UDP{SrcPort: 5353, DstPort: 53}, Payload: make([]byte, 30)})
	for _, tc := range []struct {
		name string
		prog []bpf.Instruction
		want uint32
	}{
		// Each program reads the packet (ip[9], 17) or stores on a path the
		// packet does not take: Specialize cannot fold the slots away.
		{"a slot never stored reads 0", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 23, Size: 1}, bpf.JumpIf{Cond: bpf.JumpEqual, Val: 99, SkipFalse: 1},
			bpf.StoreScratch{Src: bpf.RegA, N: 3},
			bpf.LoadScratch{Dst: bpf.RegA, N: 3}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 9}, bpf.RetA{}}, 9},
		{"a stored slot reads back", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 23, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: 15},
			bpf.LoadConstant{Dst: bpf.RegA, Val: 0}, bpf.LoadScratch{Dst: bpf.RegX, N: 15}, bpf.TXA{}, bpf.RetA{}}, 17},
		{"slots apart from each other", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 23, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: 0},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 99, SkipFalse: 1}, bpf.StoreScratch{Src: bpf.RegA, N: 1},
			bpf.LoadScratch{Dst: bpf.RegX, N: 1}, bpf.LoadScratch{Dst: bpf.RegA, N: 0},
			bpf.ALUOpX{Op: bpf.ALUOpAdd}, bpf.RetA{}}, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := bpf.Assemble(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := vm.Run(pkt); uint32(want) != tc.want {
				t.Fatalf("the classic VM says %d, the test %d", want, tc.want)
			}
			if got := load(t, raw, false, Shape{}).run(t, pkt); got != tc.want {
				t.Fatalf("eBPF %d, want %d", got, tc.want)
			}
			if load(t, raw, true, Shape{}) != nil {
				t.Fatal("inline translation took a program that uses scratch memory")
			}
		})
	}
}

// TestTranslateInlineRefusesOnlyWhatNeedsAHelper: inline code has no
// stack and makes no helper call, so it refuses scratch memory, an
// indirect load whose X may take too many values, and the length used
// other than in a comparison with a constant; and nothing else: header
// lengths (X of 4 or 5 unknown bits) and `greater`/`less` stay inline.
func TestTranslateInlineRefusesOnlyWhatNeedsAHelper(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want error
	}{
		{"tcp port 443", nil},
		{"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", nil},
		{"ip[ip[0]&0xf:1] != 0", nil},
		{"greater 100", nil},
		{"less 60", nil},
		{"len > 100 or udp", nil},
		{"ip[ip[9]] == 0", ErrNeedsHelper},
		{"len == 60", ErrNeedsHelper},
		{"len - 14 > 50", ErrNeedsHelper},
		{"ip[2:2] + ip[0] > 80", ErrUsesScratch},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			raw, err := Compile(tc.expr, 262144)
			if err != nil {
				t.Fatal(err)
			}
			_, err = TranslateInline(raw, Shape{})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if _, err := Translate(raw, Shape{}, asm.Instructions{asm.Return()}); err != nil {
				t.Fatalf("Translate: %v", err)
			}
		})
	}
}
