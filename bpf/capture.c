//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * capture.c: XDP capture with an in-kernel tcpdump filter.
 *
 *   xdpscan_capture  parses and counts the frame, runs the filter, counts a
 *                    match and, unless count-only, loads min(snaplen, len,
 *                    filter result) bytes into a ring record
 *   capture_filter   the filter: a global function whose call the loader
 *                    replaces with the tcpdump expression's code
 *                    (filter.TranslateInline) before loading; and
 *                    capture_filter_ipv4_udp ... the same filter for a
 *                    frame count_frame found to be of that shape, which
 *                    the loader specializes for it (filter.Specialize)
 *
 * One program, no tail calls: the filter's code takes the place of the
 * call, and its result stays in a register.
 * Every packet gets XDP_PASS: capture never disturbs traffic.
 * Kernel floor: 5.18 (bpf_xdp_load_bytes, xdp.frags; global functions 5.6).
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"
#include "include/parse.h"
#include "include/counters.h"
#include "include/shape.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* The filter sees every frame as it is, tags in place (savefile code,
 * loader.CaptureConfig.FrameView), not as a Linux socket filter does. */
volatile const __u8 frame_view = 0;

#define CAPTURE_CTX struct xdp_md
#define CAPTURE_LOAD(ctx, to, n, mac) bpf_xdp_load_bytes(ctx, 0, to, n)
#define CAPTURE_META(ctx, h)                                                  \
	do {                                                                  \
		(h)->ifindex = (ctx)->ingress_ifindex;                        \
		(h)->rx_queue = (ctx)->rx_queue_index;                        \
		(h)->dir = 0;                                                 \
	} while (0)
/* Up to tcpdump's largest -s (loader.MaxSnaplen): xdp.frags frames. */
#define MAX_CAPTURE 262144
#define CAPTURE_CLASSES(X)                                                    \
	X(64) X(96) X(128) X(192) X(256) X(384) X(512) X(768) X(1024)         \
	X(1536) X(2048) X(3072) X(4096) X(6144) X(9216) X(12288) X(16384)    \
	X(24576) X(32768) X(49152) X(65536) X(98304) X(131072) X(196608)      \
	X(262144)
#include "include/capture_rec.h"

/* placeholder_keep is the placeholders' "keep the whole frame", hidden from
 * clang, which would otherwise fold the constant into the callers and drop
 * the functions the loader replaces. */
static __always_inline int placeholder_keep(struct xdp_md *ctx)
{
	int keep = MAX_CAPTURE;
	asm volatile("" : "+r"(keep) : "r"(ctx));
	return keep;
}

/* capture_filter returns 0 when the frame does not match, else how many of
 * its bytes to keep. This body (keep every frame whole) is only a
 * placeholder, replaced at load time (loader.LoadCapture): it must stay a
 * global function, which the compiler neither inlines nor folds and the
 * verifier checks on its own, with ctx as its one argument. */
__attribute__((noinline)) int capture_filter(struct xdp_md *ctx)
{
	return placeholder_keep(ctx);
}

/* The filter for frames of one shape, with the same placeholder: the
 * loader puts the filter specialized for the shape in its place, in which
 * most of a filter's protocol tests are settled in advance. On the
 * testbed's flood "udp and dst port 9" becomes one load and a compare. */
#define SHAPED_FILTER(NAME)                                                   \
	__attribute__((noinline)) int capture_filter_##NAME(struct xdp_md *ctx) \
	{                                                                     \
		return placeholder_keep(ctx);                                 \
	}
SHAPED_FILTER(ipv4_udp)
SHAPED_FILTER(ipv4_tcp)
SHAPED_FILTER(ipv6_udp)
SHAPED_FILTER(ipv6_tcp)
/* The filter for a frame with an outer 802.1Q/802.1ad tag, which the
 * loader translates to see the frame as a Linux socket filter does: the
 * tag out of the packet, in the VLAN ancillary values (filter.Shape.Tagged). */
SHAPED_FILTER(vlan)

/* outer_tagged says whether the frame's EtherType is 802.1Q or 802.1ad:
 * the kernel would move that tag into metadata (skb_vlan_untag) before
 * any AF_PACKET tap sees the frame. */
static __always_inline int outer_tagged(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + sizeof(struct ethhdr) > data_end)
		return 0;
	__be16 proto = *(__be16 *)(data + offsetof(struct ethhdr, h_proto));
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* VLAN_UNTAG_MIN: skb_vlan_untag drops (frees) a tagged frame shorter than
 * the Ethernet header, the tag and the EtherType after it: no tap sees it. */
#define VLAN_UNTAG_MIN (sizeof(struct ethhdr) + 4 + 2)

/* tagged_filter runs the VLAN view of the filter: what it keeps counts
 * the tag too, as libpcap writes it back in place (caplen + 4). */
static __always_inline __u32 tagged_filter(struct xdp_md *ctx)
{
	__u32 len = frame_len(ctx);
	/* frame_view: the savefile code sees the frame as it is. */
	if (!frame_view && len < VLAN_UNTAG_MIN)
		return 0;
	__u32 keep = capture_filter_vlan(ctx);
	if (!frame_view && keep && keep < len)
		keep += 4;
	return keep;
}

static __always_inline __u32 run_filter(struct xdp_md *ctx, enum frame_shape shape)
{
	switch (shape) {
	case SHAPE_IPV4_UDP:
		return capture_filter_ipv4_udp(ctx);
	case SHAPE_IPV4_TCP:
		return capture_filter_ipv4_tcp(ctx);
	case SHAPE_IPV6_UDP:
		return capture_filter_ipv6_udp(ctx);
	case SHAPE_IPV6_TCP:
		return capture_filter_ipv6_tcp(ctx);
	default:
		if (outer_tagged(ctx))
			return tagged_filter(ctx);
		return capture_filter(ctx);
	}
}

/* Set by the loader when the program is bound to a device whose driver
 * can say which outer VLAN tag it took out of a frame before XDP (a NIC's
 * rx-vlan-offload, or veth handing over an skb whose tag the sender kept
 * in metadata): bpf_xdp_metadata_rx_vlan_tag, Linux 6.8, a device-bound
 * program in native mode. Without it the call is never made. */
volatile const __u8 vlan_meta = 0;

extern int bpf_xdp_metadata_rx_vlan_tag(const struct xdp_md *ctx, __be16 *vlan_proto,
					__u16 *vlan_tci) __ksym __weak;

/* retag puts the tag the driver holds back in the frame, after the MAC
 * addresses, where it was on the wire: the filter and the record then see
 * the frame as tcpdump does (libpcap writes such a tag back in place).
 * untag undoes it exactly before the frame goes on. 1 when retagged. */
static __always_inline int retag(struct xdp_md *ctx)
{
	/* Written first: without CAP_PERFMON the verifier refuses passing
	 * stack it has not seen written. */
	__be16 proto = 0;
	__u16 tci = 0;
	if (bpf_xdp_metadata_rx_vlan_tag(ctx, &proto, &tci))
		return 0;
	if (bpf_xdp_adjust_head(ctx, -4))
		return 0;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + sizeof(struct ethhdr) + 4 > data_end) {
		bpf_xdp_adjust_head(ctx, 4);
		return 0;
	}
	/* The addresses move 4 bytes to the front: read all, then write. */
	__u32 a = *(__u32 *)(data + 4), b = *(__u32 *)(data + 8), d = *(__u32 *)(data + 12);
	*(__u32 *)data = a;
	*(__u32 *)(data + 4) = b;
	*(__u32 *)(data + 8) = d;
	*(__be16 *)(data + 12) = proto;
	*(__be16 *)(data + 14) = bpf_htons(tci);
	return 1;
}

static __always_inline void untag(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + 16 > data_end)
		return;
	__u32 a = *(__u32 *)data, b = *(__u32 *)(data + 4), d = *(__u32 *)(data + 8);
	*(__u32 *)(data + 4) = a;
	*(__u32 *)(data + 8) = b;
	*(__u32 *)(data + 12) = d;
	bpf_xdp_adjust_head(ctx, 4);
}

static __always_inline void capture_frame(struct xdp_md *ctx)
{
	struct counter_block *c = counters_here();
	if (!c)
		return;
	__u32 keep = run_filter(ctx, count_frame(ctx, c));
	if (!keep)
		return;
	count_in(c, COUNTER_MATCHED, 1);
	if (count_only)
		return;

	capture_copy(ctx, c, frame_len(ctx), keep, 0);
}

/* xdp.frags: a frame larger than a page (MTU 9000) arrives in several
 * buffers, which bpf_xdp_load_bytes and bpf_xdp_get_buff_len see whole. */
SEC("xdp.frags")
int xdpscan_capture(struct xdp_md *ctx)
{
	int retagged = vlan_meta && retag(ctx);
	capture_frame(ctx);
	/* Opaque here, so clang does not copy capture_frame into both paths
	 * (the loader replaces each filter call once). */
	asm volatile("" : "+r"(retagged));
	if (retagged)
		untag(ctx);
	return XDP_PASS;
}
