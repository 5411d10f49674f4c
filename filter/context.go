package filter

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// Context is the kind of program context the translated filter reads the
// packet from: the same filter runs in the XDP capture program (ingress)
// and in the TC one (egress, capture -Q out), and only where the packet's
// bounds sit in the context and which helper copies bytes differ.
type Context int

const (
	// ContextXDP is struct xdp_md (data at 0, data_end at 4).
	ContextXDP Context = iota
	// ContextSKB is struct __sk_buff as a TC egress program sees it: data
	// at 76, data_end at 80 (the linear part of the skb), len at 0 (the
	// whole packet, as classic BPF's len on an AF_PACKET socket).
	ContextSKB
	// ContextSKBIngress is the same at TC ingress.
	ContextSKBIngress
)

func (c Context) String() string {
	if c != ContextXDP {
		return "__sk_buff"
	}
	return "xdp_md"
}

// bounds are the offsets in the context of the packet's start and end
// pointers.
func (c Context) bounds() (data, dataEnd int16) {
	if c != ContextXDP {
		return 76, 80
	}
	return 0, 4
}

// loadBytes is the helper that copies packet bytes at a run-time offset:
// both take (ctx, offset, to, len) and return 0 or a negative error.
func (c Context) loadBytes() asm.BuiltinFunc {
	if c != ContextXDP {
		return asm.FnSkbLoadBytes
	}
	return asm.FnXdpLoadBytes
}

// loadLength puts the packet's length in dst: bpf_xdp_get_buff_len for
// XDP (data_end - data is refused without CAP_PERFMON), the skb's len
// field for TC.
func (c Context) loadLength(ctx, dst asm.Register) asm.Instructions {
	if c != ContextXDP {
		return asm.Instructions{asm.LoadMem(dst, ctx, 0, asm.Word)}
	}
	return asm.Instructions{asm.Mov.Reg(asm.R1, ctx), asm.FnXdpGetBuffLen.Call(), asm.Mov.Reg32(dst, asm.R0)}
}

// packetOutgoing is SKF_AD_PKTTYPE's value on a sent packet, as the
// AF_PACKET tap marks its copy (PACKET_OUTGOING): libpcap's `outbound`.
const packetOutgoing = 4

// loadSKBExtension is an ancillary load (SKF_AD_*) in a TC program. There
// the kernel has already done what the XDP program's view imitates: an
// outer VLAN tag is in the skb's metadata (skb_vlan_untag on receive, tx
// VLAN offload on send), not in the data, so the __sk_buff fields answer,
// as they answer an AF_PACKET socket filter. Inline code no longer has
// the context, so those loads take the function form (ErrNeedsHelper).
func (t *translator) loadSKBExtension(num bpf.Extension) error {
	if num == bpf.ExtType && t.ctx == ContextSKB {
		t.emit(asm.Mov.Imm32(t.r.a, packetOutgoing))
		return nil
	}
	field := map[bpf.Extension]int16{
		bpf.ExtLen:            0,  // len
		bpf.ExtType:           4,  // pkt_type
		bpf.ExtVLANTagPresent: 20, // vlan_present
		bpf.ExtVLANTag:        24, // vlan_tci
		bpf.ExtVLANProto:      28, // vlan_proto
		bpf.ExtInterfaceIndex: 40, // ifindex
	}
	off, ok := field[num]
	if !ok {
		return fmt.Errorf("Linux BPF extension %d (ancillary load SKF_AD_OFF+%d) has no TC counterpart here; capture with a filter that does not need it", num, num)
	}
	if t.r.ctx == t.r.data {
		return ErrNeedsHelper
	}
	t.emit(asm.LoadMem(t.r.a, t.r.ctx, off, asm.Word))
	if num == bpf.ExtVLANProto {
		// __sk_buff.vlan_proto is in network order; SKF_AD_VLAN_TPID gives
		// it in host order.
		t.emit(asm.HostTo(asm.BE, t.r.a, asm.Half))
	}
	return nil
}
