/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * capture_rec.h: the capture programs' ring records, shared by the XDP
 * program (capture.c, received frames) and the TC program (capture_tc.c,
 * sent frames, or received ones beside another XDP program): one record
 * layout, one ring, one reader.
 *
 * The includer defines first:
 *   CAPTURE_CTX            the context type (struct xdp_md, struct __sk_buff)
 *   CAPTURE_LOAD(ctx, to, n, mac)  copies the frame's first n bytes to
 *                          `to` (bpf_xdp_load_bytes, bpf_skb_load_bytes:
 *                          both read past the first buffer); mac is how
 *                          many bytes of MAC header the context's data
 *                          lacks (0 but at TC ingress after a generic XDP
 *                          program with xdp.frags: skbmac.h)
 *   CAPTURE_META(ctx, h)   fills the header's ifindex, rx_queue and dir
 *   CAPTURE_CLASSES(X)     calls X(size) for each record size, smallest
 *                          first; MAX_CAPTURE is the largest
 * and then calls capture_copy(ctx, counters, frame length, filter result,
 * mac) for a matched packet.
 */
#ifndef XDPSCAN_CAPTURE_REC_H
#define XDPSCAN_CAPTURE_REC_H

#include "kernel.h"
#include "bpf_helpers.h"
#include "counters.h"
#include "ringwake.h"

volatile const __u8 count_only = 0;
volatile const __u32 snaplen = 262144;
volatile const __u32 ring_wakeup_bytes = 0;

struct capture_hdr {
	__u64 ts_ns;    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 orig_len; /* frame length on the wire (every buffer of an xdp.frags frame) */
	__u32 cap_len;  /* bytes that follow */
	__u32 ifindex;
	__u32 rx_queue; /* the TX queue for a sent packet */
	__u32 cpu;
	__u32 dir;      /* 0: inbound; 1: outbound */
};

/* The TC program's is replaced by the XDP program's at load
 * (MapReplacements) when both run. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct capture_hdr);
} events SEC(".maps");

#define RING_EVENTS events
#include "cpuring.h"

/* A record is reserved in the ring and the packet loaded straight into it:
 * no staging copy. bpf_ringbuf_reserve wants a size the verifier knows, so
 * each capture is reserved in the smallest class that holds it (at most
 * 1.5x its size; cap_len says how many bytes are the packet's). */
#define CAPTURE_RECORD(SIZE)                                                  \
	struct capture_##SIZE {                                               \
		struct capture_hdr hdr;                                       \
		__u8 data[SIZE];                                              \
	};                                                                    \
	static __always_inline void capture_into_##SIZE(                      \
		CAPTURE_CTX *ctx, struct counter_block *c, __u32 len, __u32 cap, \
		__u32 mac)                                                    \
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
		r->hdr.cpu = bpf_get_smp_processor_id();                      \
		CAPTURE_META(ctx, &r->hdr);                                   \
		/* The caller checked 0 < cap <= SIZE, but clang may compare \
		 * a copy the verifier does not link to the one it passes:    \
		 * say it again where it cannot be folded away, in 64 bits so \
		 * no zero extension breaks the link. */                      \
		__u64 n = cap;                                                \
		asm volatile("" : "+r"(n));                                   \
		if (n == 0 || n > SIZE || CAPTURE_LOAD(ctx, r->data, n, mac)) { \
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);             \
			return;                                               \
		}                                                             \
		/* The reservation already counts in the unread data. */     \
		bpf_ringbuf_submit(r, ring_wakeup_flags(                      \
			bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA), rec,      \
			ring_wakeup_bytes));                                  \
	}
CAPTURE_CLASSES(CAPTURE_RECORD)

/* capture_copy records min(snaplen, len, keep) bytes of a matched packet
 * of len bytes (mac of them the MAC header the context's data lacks), keep
 * being what the filter returned. */
static __always_inline void capture_copy(CAPTURE_CTX *ctx, struct counter_block *c, __u32 len, __u32 keep, __u32 mac)
{
	__u32 cap = len;
	if (cap > snaplen)
		cap = snaplen;
	if (cap > keep)
		cap = keep;
	if (cap > MAX_CAPTURE)
		cap = MAX_CAPTURE;
	if (cap == 0)
		return;
#define CAPTURE_IF_FITS(SIZE)                                                 \
	if (cap <= SIZE) {                                                    \
		capture_into_##SIZE(ctx, c, len, cap, mac);                   \
		return;                                                       \
	}
	CAPTURE_CLASSES(CAPTURE_IF_FITS)
#undef CAPTURE_IF_FITS
}

#endif /* XDPSCAN_CAPTURE_REC_H */
