//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * capture.c: XDP capture with an in-kernel tcpdump filter.
 *
 *   xdpscan_capture      parses and counts, then tail-calls the filter
 *   (filter)             built at run time from the tcpdump expression
 *                        (filter.Translate); stores its result in
 *                        `verdict` and tail-calls back
 *   xdpscan_capture_tail counts the match and, unless count-only, copies
 *                        min(snaplen, len, filter result) bytes to the ring
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

#define MAX_CAPTURE 4096

volatile const __u8 count_only = 0;
volatile const __u32 snaplen = 262144;
volatile const __u32 ring_wakeup_bytes = 0;

struct capture_hdr {
	__u64 ts_ns;    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 orig_len; /* frame length on the wire (linear XDP data) */
	__u32 cap_len;  /* bytes that follow */
	__u32 ifindex;
	__u32 rx_queue;
	__u32 cpu;
	__u32 pad;
};

struct capture_buf {
	struct capture_hdr hdr;
	__u8 data[MAX_CAPTURE];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct capture_hdr);
} events SEC(".maps");

/* Per-CPU staging for bpf_ringbuf_output: bpf_ringbuf_reserve wants a
 * constant size, and captures have as many sizes as packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_buf);
} scratch SEC(".maps");

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

	struct capture_buf *b = bpf_map_lookup_elem(&scratch, &zero);
	if (!b)
		return XDP_PASS;
	b->hdr.ts_ns = bpf_ktime_get_ns();
	b->hdr.orig_len = len;
	b->hdr.cap_len = cap;
	b->hdr.ifindex = ctx->ingress_ifindex;
	b->hdr.rx_queue = ctx->rx_queue_index;
	b->hdr.cpu = bpf_get_smp_processor_id();
	b->hdr.pad = 0;
	if (bpf_xdp_load_bytes(ctx, 0, b->data, cap))
		return XDP_PASS;

	/* bpf_ringbuf_output reserves and submits at once: the unread data
	 * does not count this record yet. */
	__u64 flags = 0;
	if (ring_wakeup_bytes) {
		__u64 rec = ring_record_bytes(sizeof(b->hdr) + cap);
		flags = ring_wakeup_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + rec, rec, ring_wakeup_bytes);
	}
	if (bpf_ringbuf_output(&events, b, sizeof(b->hdr) + cap, flags))
		count(COUNTER_RING_LOST, 1);
	return XDP_PASS;
}
