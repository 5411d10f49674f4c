// Package testfilter builds classic BPF programs for the tests of the
// filter translation and of the programs that load its output: the same
// long filter serves both, so their tests exercise the same shape.
package testfilter

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
)

// firstAddress is AddressList's first address, 198.18.0.0.
const firstAddress = 0xc6120000

// AddressListAddr is the i-th address of AddressList's lists (198.18.0.0 + i).
func AddressListAddr(i int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], firstAddress+uint32(i))
	return netip.AddrFrom4(b)
}

// AddressList is the classic program of `ip src or dst in a list of n
// addresses` (AddressListAddr(0) to AddressListAddr(n-1)) as libpcap lays
// out a long `or` chain: one jeq per address, each followed by a 32-bit ja
// to the match (jt and jf are 8-bit), the source list, then the
// destination list; 4n+7 instructions. libpcap itself takes long to
// compile that many terms, and the expression would be over
// filter.MaxExpressionBytes: a program of this shape can still come to
// the loader (loader.CaptureConfig.Filter is any classic program), and
// its translation, about two eBPF instructions per term, needs jumps past
// 32,767 instructions once n passes ~8,200.
func AddressList(n int) []bpf.RawInstruction {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipTrue: 1},
		bpf.Jump{}, // to reject: set below
	}
	var toMatch []int
	for _, off := range []uint32{26, 30} {
		prog = append(prog, bpf.LoadAbsolute{Off: off, Size: 4})
		for i := range n {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: firstAddress + uint32(i), SkipFalse: 1})
			toMatch = append(toMatch, len(prog))
			prog = append(prog, bpf.Jump{})
		}
	}
	reject := len(prog)
	prog = append(prog, bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 262144})
	prog[2] = bpf.Jump{Skip: uint32(reject - 3)}
	for _, j := range toMatch {
		prog[j] = bpf.Jump{Skip: uint32(reject - j)}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		// Every instruction above is valid: only a change to this code gets here.
		panic(err)
	}
	return raw
}
