//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * capture_tc.c: the egress half of `capture -Q out|inout`. XDP sees only
 * received frames; a TC program on the interface's egress hook (tcx, Linux
 * 6.6, or a clsact qdisc's cls_bpf filter before that) sees every frame the
 * interface sends, as an AF_PACKET tap does.
 *
 *   xdpscan_capture_egress  counts the frame, runs the filter, counts a
 *                           match and, unless count-only, copies
 *                           min(snaplen, len, filter result) bytes into a
 *                           record of the capture program's ring (the
 *                           loader hands this program the XDP program's
 *                           ring map: one ring, one reader, one file)
 *   capture_egress_filter   the same translated filter as capture.c's
 *                           (filter.Splice with filter.ContextSKB)
 *
 * Records are capture.c's struct capture_hdr with dir = 1 (outbound), or 0
 * when loaded for the ingress hook (inbound = 1: see below).
 * Counters: this program's own counters map, so each direction is counted
 * apart (packets, bytes, matched, ring lost; the protocol breakdown is the
 * XDP parser's and stays ingress only).
 * Every packet continues (TC_ACT_UNSPEC): capture never disturbs traffic.
 */
#include "include/kernel.h"
#include "include/skb.h"
#include "include/bpf_helpers.h"
#include "include/counters.h"
#include "include/ringwake.h"

char __license[] SEC("license") = "Dual BSD/GPL";

volatile const __u8 count_only = 0;
volatile const __u32 snaplen = 262144;
volatile const __u32 ring_wakeup_bytes = 0;
/* Set when the program runs on the ingress hook instead: beside an XDP
 * program someone else attached, after it (it sees what that program
 * passed on). */
volatile const __u8 inbound = 0;

#define MAX_CAPTURE 4096

/* As capture.c's (the records share its ring). */
struct capture_hdr {
	__u64 ts_ns;
	__u32 orig_len;
	__u32 cap_len;
	__u32 ifindex;
	__u32 rx_queue; /* here the TX queue */
	__u32 cpu;
	__u32 dir;      /* 1: outbound */
};

/* Replaced by the XDP capture program's ring at load (MapReplacements). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct capture_hdr);
} events SEC(".maps");

#define CAPTURE_CLASSES(X)                                                    \
	X(64) X(96) X(128) X(192) X(256) X(384) X(512) X(768) X(1024)         \
	X(1536) X(2048) X(3072) X(4096)

#define CAPTURE_RECORD(SIZE)                                                  \
	struct capture_##SIZE {                                               \
		struct capture_hdr hdr;                                       \
		__u8 data[SIZE];                                              \
	};                                                                    \
	static __always_inline void capture_into_##SIZE(                      \
		struct __sk_buff *skb, struct counter_block *c, __u32 len, __u32 cap) \
	{                                                                     \
		__u64 rec = ring_record_bytes(sizeof(struct capture_##SIZE)); \
		struct capture_##SIZE *r =                                    \
			bpf_ringbuf_reserve(&events, sizeof(*r), 0);          \
		if (!r) {                                                     \
			count_in(c, COUNTER_RING_LOST, 1);                    \
			return;                                               \
		}                                                             \
		r->hdr.ts_ns = bpf_ktime_get_ns();                            \
		r->hdr.orig_len = len;                                        \
		r->hdr.cap_len = cap;                                         \
		r->hdr.ifindex = skb->ifindex;                                \
		r->hdr.rx_queue = skb->queue_mapping;                         \
		r->hdr.cpu = bpf_get_smp_processor_id();                      \
		r->hdr.dir = inbound ? 0 : 1;                                 \
		__u64 n = cap; /* as in capture.c */                          \
		asm volatile("" : "+r"(n));                                   \
		/* bpf_skb_load_bytes reads past the linear part too. */     \
		if (n == 0 || n > SIZE ||                                     \
		    bpf_skb_load_bytes(skb, 0, r->data, n)) {                 \
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);             \
			return;                                               \
		}                                                             \
		bpf_ringbuf_submit(r, ring_wakeup_flags(                      \
			bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), rec,   \
			ring_wakeup_bytes));                                  \
	}
CAPTURE_CLASSES(CAPTURE_RECORD)

static __always_inline int placeholder_keep(struct __sk_buff *skb)
{
	int keep = MAX_CAPTURE;
	asm volatile("" : "+r"(keep) : "r"(skb));
	return keep;
}

/* As capture.c's capture_filter: 0 for no match, else the bytes to keep;
 * the loader puts the translated filter in place of this placeholder. */
__attribute__((noinline)) int capture_egress_filter(struct __sk_buff *skb)
{
	return placeholder_keep(skb);
}

SEC("tc")
int xdpscan_capture_egress(struct __sk_buff *skb)
{
	struct counter_block *c = counters_here();
	if (!c)
		return TC_ACT_UNSPEC;
	__u32 len = skb->len;
	count_in(c, COUNTER_PACKETS, 1);
	count_in(c, COUNTER_BYTES, len);
	__u32 keep = capture_egress_filter(skb);
	if (!keep)
		return TC_ACT_UNSPEC;
	count_in(c, COUNTER_MATCHED, 1);
	if (count_only)
		return TC_ACT_UNSPEC;
	__u32 cap = len;
	if (cap > snaplen)
		cap = snaplen;
	if (cap > keep)
		cap = keep;
	if (cap > MAX_CAPTURE)
		cap = MAX_CAPTURE;
	if (cap == 0)
		return TC_ACT_UNSPEC;
#define CAPTURE_IF_FITS(SIZE)                                                 \
	if (cap <= SIZE) {                                                    \
		capture_into_##SIZE(skb, c, len, cap);                        \
		return TC_ACT_UNSPEC;                                         \
	}
	CAPTURE_CLASSES(CAPTURE_IF_FITS)
	return TC_ACT_UNSPEC;
}
