package filter

import "github.com/cilium/ebpf/asm"

// Context is the kind of program context the translated filter reads the
// packet from: the same filter runs in the XDP capture program (ingress)
// and in the TC one (egress, capture -Q out), and only where the packet's
// bounds sit in the context and which helper copies bytes differ.
type Context int

const (
	// ContextXDP is struct xdp_md (data at 0, data_end at 4).
	ContextXDP Context = iota
	// ContextSKB is struct __sk_buff as a TC program sees it: data at 76,
	// data_end at 80 (the linear part of the skb), len at 0 (the whole
	// packet, as classic BPF's len on an AF_PACKET socket).
	ContextSKB
)

func (c Context) String() string {
	if c == ContextSKB {
		return "__sk_buff"
	}
	return "xdp_md"
}

// bounds are the offsets in the context of the packet's start and end
// pointers.
func (c Context) bounds() (data, dataEnd int16) {
	if c == ContextSKB {
		return 76, 80
	}
	return 0, 4
}

// loadBytes is the helper that copies packet bytes at a run-time offset:
// both take (ctx, offset, to, len) and return 0 or a negative error.
func (c Context) loadBytes() asm.BuiltinFunc {
	if c == ContextSKB {
		return asm.FnSkbLoadBytes
	}
	return asm.FnXdpLoadBytes
}

// loadLength puts the packet's length in dst: bpf_xdp_get_buff_len for
// XDP (data_end - data is refused without CAP_PERFMON), the skb's len
// field for TC.
func (c Context) loadLength(ctx, dst asm.Register) asm.Instructions {
	if c == ContextSKB {
		return asm.Instructions{asm.LoadMem(dst, ctx, 0, asm.Word)}
	}
	return asm.Instructions{asm.Mov.Reg(asm.R1, ctx), asm.FnXdpGetBuffLen.Call(), asm.Mov.Reg32(dst, asm.R0)}
}
