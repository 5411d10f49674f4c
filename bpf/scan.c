//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * scan.c: XDP program on the scanner's interface.
 *
 * Validates replies to xdpscan's own probes in the kernel, de-duplicates
 * them, hands each new one to user space through a ring buffer, and drops
 * it so the host stack never answers with a RST nor spends time on it.
 * Everything else passes untouched.
 *
 * Kernel floor: 5.8 (ring buffer); 5.9 for bpf_link XDP attachment.
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"
#include "include/parse.h"
#include "include/counters.h"
#include "include/siphash.h"
#include "include/tcpreply.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* Set by loader/ before loading. */
volatile const __be32 scanner_ipv4 = 0;    /* network order; 0 = no IPv4 */
/* Our IPv6 address as two words loaded from its bytes in memory order
 * (all zero = no IPv6). Two scalars, not an array: clang may fold reads of a
 * volatile const array through a cast to the initial zeros. */
volatile const __u64 scanner_ipv6_hi = 0;
volatile const __u64 scanner_ipv6_lo = 0;
volatile const __u16 sport_lo = 40000;     /* our probes' source ports */
volatile const __u16 sport_hi = 40255;
volatile const __u64 cookie_k0 = 0;
volatile const __u64 cookie_k1 = 0;
/* Submit without waking the reader until this many bytes wait in the ring;
 * 0 lets the kernel decide (a wakeup whenever the reader has caught up). */
volatile const __u32 ring_wakeup_bytes = 0;
/* Answer every validated SYN-ACK with a RST sent back by XDP_TX instead of
 * only dropping it: the target frees its half-open connection and stops
 * retransmitting. The host stack still never sees the reply. */
volatile const __u8 reset_open = 0;

enum reply_kind {
	REPLY_OPEN = 1,   /* TCP SYN-ACK */
	REPLY_CLOSED = 2, /* TCP RST */
};

struct scan_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u8 addr[16];    /* the target that replied; IPv4 in the first 4 bytes */
	__u16 port;       /* the target's port, host order */
	__u16 local_port; /* our probe's source port, host order */
	__u16 ip_id;
	__u16 window;
	__u8 family;      /* 4 or 6 */
	__u8 proto;       /* IPPROTO_TCP */
	__u8 tcp_flags;
	__u8 ttl;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 kind;        /* enum reply_kind */
	__u8 pad;
};

struct dedup_key {
	__u8 addr[16];
	__u16 port;
	__u8 proto;
	__u8 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct scan_event);
} events SEC(".maps");

/* Targets retransmit SYN-ACKs; each (address, port) is reported once. The
 * LRU bound keeps kernel memory fixed whatever the scan's size. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, struct dedup_key);
	__type(value, __u8);
} dedup SEC(".maps");

static __always_inline __u64 load_be64(const __u8 *b)
{
	__u64 v;
	__builtin_memcpy(&v, b, 8);
	return bpf_be64_to_cpu(v);
}

/* probe_cookie is the keyed hash of a probe's tuple (as the probe was
 * sent: src = us, dst = target); engine/cookie.go is its Go twin. */
static __always_inline __u32 probe_cookie(__u8 family, const __u8 *src, const __u8 *dst,
					  __u8 proto, __u16 sport, __u16 dport)
{
	__u64 ports = (__u64)proto << 32 | (__u64)sport << 16 | dport;

	if (family == 4) {
		__u32 s, d;
		__builtin_memcpy(&s, src, 4);
		__builtin_memcpy(&d, dst, 4);
		__u64 m[2] = {(__u64)bpf_ntohl(s) << 32 | bpf_ntohl(d), ports};
		return siphash24_words(cookie_k0, cookie_k1, m, 2);
	}
	__u64 m[5] = {load_be64(src), load_be64(src + 8), load_be64(dst), load_be64(dst + 8), ports};
	return siphash24_words(cookie_k0, cookie_k1, m, 5);
}

static __always_inline int addressed_to_us(const struct packet *p)
{
	if (p->family == 4) {
		__be32 d;
		__builtin_memcpy(&d, p->daddr, 4);
		return scanner_ipv4 != 0 && d == scanner_ipv4;
	}
	__u64 want0 = scanner_ipv6_hi, want1 = scanner_ipv6_lo, got0, got1;
	__builtin_memcpy(&got0, p->daddr, 8);
	__builtin_memcpy(&got1, p->daddr + 8, 8);
	return (want0 | want1) != 0 && got0 == want0 && got1 == want1;
}

static __always_inline __u64 ring_flags(void)
{
	if (!ring_wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ring_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* tcp_reply_kind validates a TCP segment as a reply to one of our SYNs and
 * says what it means, or returns 0. */
static __always_inline int tcp_reply_kind(const struct packet *p, const struct tcphdr *th)
{
	__u8 flags = p->tcp_flags;
	int kind;

	if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == (TCP_FLAG_SYN | TCP_FLAG_ACK))
		kind = REPLY_OPEN;
	else if (flags & TCP_FLAG_RST)
		kind = REPLY_CLOSED;
	else
		return 0;

	/* Our probe: src = reply's dst, dst = reply's src. */
	__u32 cookie = probe_cookie(p->family, p->daddr, p->saddr, IPPROTO_TCP, p->dport, p->sport);
	__u32 ack = bpf_ntohl(th->ack_seq);
	if (ack - 1 == cookie)
		return kind;
	/* zmap's rule: some stacks answer a SYN with a RST that does not count
	 * the SYN in its acknowledgement number. */
	if (kind == REPLY_CLOSED && ack == cookie)
		return kind;
	count(COUNTER_BAD_COOKIE, 1);
	return 0;
}

/* verdict_for_ours is the fate of a validated reply: a SYN-ACK becomes our
 * RST when reset_open is set (IPv4, untagged, no IP options), else dropped. */
static __always_inline int verdict_for_ours(struct xdp_md *ctx, const struct packet *p, int kind, __u32 ack)
{
	if (!reset_open || kind != REPLY_OPEN || p->family != 4 || p->vlan_depth ||
	    p->l4_off != sizeof(struct ethhdr) + sizeof(struct iphdr))
		return XDP_DROP;
	if (tcp_reply(ctx, p->len, TCP_FLAG_RST, ack, 0, 0))
		return XDP_DROP;
	count(COUNTER_TX, 1);
	return XDP_TX;
}

SEC("xdp")
int xdpscan_scan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct packet p = {};

	int res = parse_packet(ctx, &p);
	count_parse(&p, res);
	if (res != PARSE_L4 || p.l4_proto != IPPROTO_TCP)
		return XDP_PASS;
	if (p.dport < sport_lo || p.dport > sport_hi || !addressed_to_us(&p))
		return XDP_PASS;

	struct tcphdr *th = PKT_AT(data, data_end, p.l4_off, struct tcphdr);
	if (!th)
		return XDP_PASS;
	int kind = tcp_reply_kind(&p, th);
	if (!kind)
		return XDP_PASS;

	/* From here on the packet is ours: it never reaches the host stack. */
	count(COUNTER_MATCHED, 1);
	count(COUNTER_DROPPED, 1);
	__u32 ack = bpf_ntohl(th->ack_seq);

	struct dedup_key key = {};
	__builtin_memcpy(key.addr, p.saddr, 16);
	key.port = p.sport;
	key.proto = IPPROTO_TCP;
	key.family = p.family;
	__u8 seen = (__u8)kind;
	if (bpf_map_update_elem(&dedup, &key, &seen, BPF_NOEXIST) != 0) {
		count(COUNTER_DUPLICATES, 1);
		return verdict_for_ours(ctx, &p, kind, ack);
	}

	struct scan_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RING_LOST, 1);
		/* Forget the pair so the target's retransmission can still be
		 * reported once the reader catches up. */
		bpf_map_delete_elem(&dedup, &key);
		return XDP_DROP; /* no RST: let the target retransmit */
	}
	e->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(e->addr, p.saddr, 16);
	e->port = p.sport;
	e->local_port = p.dport;
	e->ip_id = p.ip_id;
	e->window = bpf_ntohs(th->window);
	e->family = p.family;
	e->proto = IPPROTO_TCP;
	e->tcp_flags = p.tcp_flags;
	e->ttl = p.ttl;
	e->icmp_type = 0;
	e->icmp_code = 0;
	e->kind = kind;
	e->pad = 0;
	bpf_ringbuf_submit(e, ring_flags());
	return verdict_for_ours(ctx, &p, kind, ack);
}
