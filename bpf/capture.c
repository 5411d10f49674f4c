//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * capture.c: XDP capture with an in-kernel tcpdump filter.
 *
 *   xdpscan_capture      parses and counts, then tail-calls the filter
 *   (filter)             built at run time from the tcpdump expression
 *                        (filter.Translate); stores its result in
 *                        `verdict` and tail-calls back, or in count-only
 *                        mode counts a match itself and returns
 *   xdpscan_capture_tail counts the match and, unless count-only, loads
 *                        min(snaplen, len, filter result) bytes into a ring
 *                        record
 *
 * Every packet gets XDP_PASS: capture never disturbs traffic.
 * Kernel floor: 5.18 (bpf_xdp_load_bytes).
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"
#include "include/parse.h"
#include "include/counters.h"
#include "include/ringwake.h"

char __license[] SEC("license") = "Dual BSD/GPL";

volatile const __u8 count_only = 0;
volatile const __u32 snaplen = 262144;
volatile const __u32 ring_wakeup_bytes = 0;

/* The largest class below; loader.MaxSnaplen. */
#define MAX_CAPTURE 4096

struct capture_hdr {
	__u64 ts_ns;    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 orig_len; /* frame length on the wire (linear XDP data) */
	__u32 cap_len;  /* bytes that follow */
	__u32 ifindex;
	__u32 rx_queue;
	__u32 cpu;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct capture_hdr);
} events SEC(".maps");

/* The filter's result for the packet being handled on this CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} verdict SEC(".maps");

/* 0: the filter; 1: xdpscan_capture_tail. Filled from Go. */
struct {
	__uint(type, 3 /* BPF_MAP_TYPE_PROG_ARRAY */);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} progs SEC(".maps");

SEC("xdp")
int xdpscan_capture(struct xdp_md *ctx)
{
	struct packet p = {};
	int res = parse_packet(ctx, &p);
	count_parse(&p, res);
	bpf_tail_call(ctx, &progs, 0);
	return XDP_PASS; /* no filter installed */
}

/* A record is reserved in the ring and the packet loaded straight into it:
 * no staging copy. bpf_ringbuf_reserve wants a size the verifier knows, so
 * each capture is reserved in the smallest of these classes that holds it
 * (at most 1.5x its size; cap_len says how many bytes are the packet's).
 * CAPTURE_CLASSES(X) calls X(size) for each, smallest first. */
#define CAPTURE_CLASSES(X)                                                    \
	X(64) X(96) X(128) X(192) X(256) X(384) X(512) X(768) X(1024)         \
	X(1536) X(2048) X(3072) X(4096)

#define CAPTURE_RECORD(SIZE)                                                  \
	struct capture_##SIZE {                                               \
		struct capture_hdr hdr;                                       \
		__u8 data[SIZE];                                              \
	};                                                                    \
	static __always_inline void capture_into_##SIZE(struct xdp_md *ctx,   \
							 __u32 len, __u32 cap) \
	{                                                                     \
		__u64 rec = ring_record_bytes(sizeof(struct capture_##SIZE)); \
		struct capture_##SIZE *r =                                    \
			bpf_ringbuf_reserve(&events, sizeof(*r), 0);          \
		if (!r) {                                                     \
			count(COUNTER_RING_LOST, 1);                          \
			return;                                               \
		}                                                             \
		r->hdr.ts_ns = bpf_ktime_get_ns();                            \
		r->hdr.orig_len = len;                                        \
		r->hdr.cap_len = cap;                                         \
		r->hdr.ifindex = ctx->ingress_ifindex;                        \
		r->hdr.rx_queue = ctx->rx_queue_index;                        \
		r->hdr.cpu = bpf_get_smp_processor_id();                      \
		r->hdr.pad = 0;                                               \
		/* The caller checked cap <= SIZE, but clang may compare a   \
		 * copy the verifier does not link to cap: say it again where \
		 * it cannot be folded away. */                               \
		asm volatile("" : "+r"(cap));                                 \
		if (cap > SIZE)                                               \
			cap = SIZE;                                           \
		if (bpf_xdp_load_bytes(ctx, 0, r->data, cap)) {               \
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);             \
			return;                                               \
		}                                                             \
		/* The reservation already counts in the unread data. */     \
		bpf_ringbuf_submit(r, ring_wakeup_flags(                      \
			bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), rec,   \
			ring_wakeup_bytes));                                  \
	}
CAPTURE_CLASSES(CAPTURE_RECORD)

SEC("xdp")
int xdpscan_capture_tail(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&verdict, &zero);
	if (!v || *v == 0)
		return XDP_PASS;
	count(COUNTER_MATCHED, 1);
	if (count_only)
		return XDP_PASS;

	__u32 len = ctx->data_end - ctx->data;
	__u32 cap = len;
	if (cap > snaplen)
		cap = snaplen;
	if (cap > *v)
		cap = *v;
	if (cap > MAX_CAPTURE)
		cap = MAX_CAPTURE;
	if (cap == 0)
		return XDP_PASS;
#define CAPTURE_IF_FITS(SIZE)                                                 \
	if (cap <= SIZE) {                                                    \
		capture_into_##SIZE(ctx, len, cap);                           \
		return XDP_PASS;                                              \
	}
	CAPTURE_CLASSES(CAPTURE_IF_FITS)
	return XDP_PASS; /* not reached: the last class is MAX_CAPTURE */
}
