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
#include "include/ringwake.h"

char __license[] SEC("license") = "Dual BSD/GPL";

volatile const __u8 count_only = 0;
volatile const __u32 snaplen = 262144;
volatile const __u32 ring_wakeup_bytes = 0;
/* The filter sees every frame as it is, tags in place (savefile code,
 * loader.CaptureConfig.FrameView), not as a Linux socket filter does. */
volatile const __u8 frame_view = 0;

/* The largest class below; loader.MaxSnaplen (tcpdump's largest -s). */
#define MAX_CAPTURE 262144

struct capture_hdr {
	__u64 ts_ns;    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 orig_len; /* frame length on the wire (every buffer of an xdp.frags frame) */
	__u32 cap_len;  /* bytes that follow */
	__u32 ifindex;
	__u32 rx_queue;
	__u32 cpu;
	__u32 dir;      /* 0: inbound (XDP); capture_tc.c writes 1, outbound */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct capture_hdr);
} events SEC(".maps");

#define RING_EVENTS events
#include "include/cpuring.h"

/* A record is reserved in the ring and the packet loaded straight into it:
 * no staging copy. bpf_ringbuf_reserve wants a size the verifier knows, so
 * each capture is reserved in the smallest of these classes that holds it
 * (at most 1.5x its size; cap_len says how many bytes are the packet's).
 * CAPTURE_CLASSES(X) calls X(size) for each, smallest first. */
#define CAPTURE_CLASSES(X)                                                    \
	X(64) X(96) X(128) X(192) X(256) X(384) X(512) X(768) X(1024)         \
	X(1536) X(2048) X(3072) X(4096) X(6144) X(9216) X(12288) X(16384)    \
	X(24576) X(32768) X(49152) X(65536) X(98304) X(131072) X(196608)      \
	X(262144)

#define CAPTURE_RECORD(SIZE)                                                  \
	struct capture_##SIZE {                                               \
		struct capture_hdr hdr;                                       \
		__u8 data[SIZE];                                              \
	};                                                                    \
	static __always_inline void capture_into_##SIZE(                      \
		struct xdp_md *ctx, struct counter_block *c, __u32 len, __u32 cap) \
	{                                                                     \
		__u64 rec = ring_record_bytes(sizeof(struct capture_##SIZE)); \
		void *ring = ring_here();                                     \
		struct capture_##SIZE *r =                                    \
			bpf_ringbuf_reserve(ring, sizeof(*r), 0);             \
		if (!r) {                                                     \
			count_in(c, COUNTER_RING_LOST, 1);                    \
			return;                                               \
		}                                                             \
		r->hdr.ts_ns = bpf_ktime_get_ns();                            \
		r->hdr.orig_len = len;                                        \
		r->hdr.cap_len = cap;                                         \
		r->hdr.ifindex = ctx->ingress_ifindex;                        \
		r->hdr.rx_queue = ctx->rx_queue_index;                        \
		r->hdr.cpu = bpf_get_smp_processor_id();                      \
		r->hdr.dir = 0;                                               \
		/* The caller checked 0 < cap <= SIZE, but clang may compare \
		 * a copy the verifier does not link to the one it passes:    \
		 * say it again where it cannot be folded away, in 64 bits so \
		 * no zero extension breaks the link. */                      \
		__u64 n = cap;                                                \
		asm volatile("" : "+r"(n));                                   \
		if (n == 0 || n > SIZE ||                                     \
		    bpf_xdp_load_bytes(ctx, 0, r->data, n)) {                 \
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);             \
			return;                                               \
		}                                                             \
		/* The reservation already counts in the unread data. */     \
		bpf_ringbuf_submit(r, ring_wakeup_flags(                      \
			bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA), rec,      \
			ring_wakeup_bytes));                                  \
	}
CAPTURE_CLASSES(CAPTURE_RECORD)

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

/* xdp.frags: a frame larger than a page (MTU 9000) arrives in several
 * buffers, which bpf_xdp_load_bytes and bpf_xdp_get_buff_len see whole. */
SEC("xdp.frags")
int xdpscan_capture(struct xdp_md *ctx)
{
	struct counter_block *c = counters_here();
	if (!c)
		return XDP_PASS;
	__u32 keep = run_filter(ctx, count_frame(ctx, c));
	if (!keep)
		return XDP_PASS;
	count_in(c, COUNTER_MATCHED, 1);
	if (count_only)
		return XDP_PASS;

	__u32 len = frame_len(ctx);
	__u32 cap = len;
	if (cap > snaplen)
		cap = snaplen;
	if (cap > keep)
		cap = keep;
	if (cap > MAX_CAPTURE)
		cap = MAX_CAPTURE;
	if (cap == 0)
		return XDP_PASS;
#define CAPTURE_IF_FITS(SIZE)                                                 \
	if (cap <= SIZE) {                                                    \
		capture_into_##SIZE(ctx, c, len, cap);                        \
		return XDP_PASS;                                              \
	}
	CAPTURE_CLASSES(CAPTURE_IF_FITS)
	return XDP_PASS; /* not reached: the last class is MAX_CAPTURE */
}
