package filter

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// The contract between the capture program (bpf/capture.c) and the
// translated filter, which any program that runs the same filter must
// keep to give it the same view:
//
//   - the code gets the XDP context in R1 (xdp_md: data, data_end,
//     ingress_ifindex) and returns in R0 the bytes to keep (0: no match),
//     counted in the filter's packet;
//   - a frame whose EtherType (bytes 12-13) is 0x8100 or 0x88a8 and which
//     holds at least 20 bytes runs the copy translated with
//     Shape{Tagged: true}: the filter's packet is the frame without bytes
//     12-15, SKF_AD_VLAN_TAG_PRESENT is 1, SKF_AD_VLAN_TAG is frame bytes
//     14-15 (the whole TCI), SKF_AD_VLAN_TPID frame bytes 12-13, the
//     length the frame's less 4, and the program adds the 4 tag bytes to
//     what the filter keeps (libpcap writes the tag back in place);
//     a shorter tagged frame matches nothing (the kernel drops it);
//   - every other frame runs an untagged copy: the packet is the frame,
//     SKF_AD_VLAN_TAG_PRESENT, _TAG and _TPID are 0;
//   - SKF_AD_PKTTYPE is PACKET_HOST (a received frame), SKF_AD_IFINDEX
//     the receiving interface, SKF_AD_LEN and `len` the length of every
//     buffer of the frame (bpf_xdp_get_buff_len); any other SKF_AD load
//     is refused when the filter is translated.
//
// The frame-side view a Linux socket filter has, which Translate gives
// the filter on an XDP frame. On receive, __netif_receive_skb_core calls
// skb_vlan_untag on a frame whose EtherType is 802.1Q or 802.1ad before
// the AF_PACKET taps run: the outer tag leaves the packet data for
// skb->vlan_tci and skb->vlan_proto, which a socket filter reads through
// SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TAG and SKF_AD_VLAN_TPID; an inner
// tag (QinQ) stays in the data. XDP runs before that, on veth and in
// generic mode with the tag in the frame: Shape.Tagged is such a frame.
const (
	tagOffset = 12 // the outer tag follows the two MAC addresses
	tagLen    = 4
	// packetHost is SKF_AD_PKTTYPE's value for a received frame:
	// PACKET_HOST. The kernel's PACKET_BROADCAST, MULTICAST and OTHERHOST
	// are not told apart (XDP does not know the device's address); libpcap
	// only ever compares the type with PACKET_OUTGOING (`inbound`,
	// `outbound`), which a received frame never is.
	packetHost = 0
)

// linearAtLeast is how many of a frame's first bytes the code reads
// straight from the linear part of an XDP buffer. An xdp.frags program
// may get a frame in several buffers, whose linear part (data..data_end)
// is only the first: veth's and generic XDP's hold min(length, a page
// less headroom: ~3.5 KiB) there, NIC drivers a receive buffer (2 KiB or
// more). Below this offset a failed bounds check means the frame is
// shorter; past it the code asks bpf_xdp_load_bytes and
// bpf_xdp_get_buff_len, which see every buffer.
const linearAtLeast = 1514

// extension is the value of the ancillary load num on every frame of s,
// when it is the same on all of them.
func (s Shape) extension(num bpf.Extension) (uint32, bool) {
	if s.skb {
		// The skb says, packet by packet: a received frame's outer tag
		// is in its metadata, a sent one's pkt_type is PACKET_OUTGOING.
		return 0, false
	}
	switch num {
	case bpf.ExtVLANTagPresent:
		if s.Tagged {
			return 1, true
		}
		return 0, true
	case bpf.ExtVLANTag, bpf.ExtVLANProto:
		if !s.Tagged {
			return 0, true // skb->vlan_tci, vlan_proto: 0 without a tag
		}
	case bpf.ExtType:
		return packetHost, true
	}
	return 0, false
}

// frameOffset is where byte off of the filter's packet lies in the frame.
func (s Shape) frameOffset(off uint32) uint32 {
	if s.Tagged && off >= tagOffset {
		return off + tagLen
	}
	return off
}

// frameLen is the frame length for a packet length n.
func (s Shape) frameLen(n uint32) uint32 {
	if s.Tagged {
		return n + tagLen
	}
	return n
}

// loadExtension translates an ancillary load (SKF_AD_*) into A.
func (t *translator) loadExtension(num bpf.Extension) error {
	if t.ctx != ContextXDP {
		return t.loadSKBExtension(num)
	}
	if v, ok := t.shape.extension(num); ok {
		t.emit(asm.Mov.Imm32(t.r.a, int32(v)))
		return nil
	}
	switch num {
	case bpf.ExtLen:
		// data_end - data is refused without CAP_PERFMON (pointer -=
		// pointer), and an xdp.frags frame may go on past data_end: the
		// length comes from bpf_xdp_get_buff_len (Linux 5.18), every
		// buffer's bytes, which is the socket buffer's length.
		if !t.r.helpers {
			return ErrNeedsHelper
		}
		t.emit(asm.Mov.Reg(asm.R1, t.r.ctx), asm.FnXdpGetBuffLen.Call(), asm.Mov.Reg32(t.r.a, asm.R0))
		if t.shape.Tagged {
			t.emit(asm.Sub.Imm32(t.r.a, tagLen))
		}
	case bpf.ExtVLANTag: // the tag's TCI (priority, DEI, VLAN ID), host order
		return t.loadFrame(t.r.a, tagOffset+2, 2, false)
	case bpf.ExtVLANProto: // the outer tag's TPID: 0x8100 or 0x88a8
		return t.loadFrame(t.r.a, tagOffset, 2, false)
	case bpf.ExtInterfaceIndex:
		if t.r.ctx == t.r.data { // inline code no longer has the context
			return ErrNeedsHelper
		}
		t.emit(asm.LoadMem(t.r.a, t.r.ctx, 12, asm.Word)) // xdp_md.ingress_ifindex
	default:
		return fmt.Errorf("Linux BPF extension %d (ancillary load SKF_AD_OFF+%d) has no XDP counterpart; capture with a filter that does not need it", num, num)
	}
	return nil
}
