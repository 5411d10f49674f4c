/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * scan_reply.h: what the scan program does with a received packet, shared
 * by its XDP program (scan.c: the interface's XDP hook, before the kernel
 * allocates anything) and its TC program (scan_tc.c: the TC ingress hook,
 * beside an XDP program someone else holds). Validates replies to
 * xdpscan's own probes (TCP SYN-ACK/RST, UDP datagrams, ICMP echo replies,
 * and ICMP errors quoting a probe), de-duplicates them, hands each new one
 * to user space through a ring buffer and consumes it, so the host stack
 * never answers with a RST nor spends time on it. Everything else passes
 * untouched.
 *
 * The includer defines, besides pktctx.h's context macros:
 *   VERDICT_PASS, VERDICT_DROP  not ours (the next program or the stack
 *                               gets it), and consumed
 *   VERDICT_SEND_BACK(ctx)      the rewritten frame (--reset's RST) goes
 *                               back out of the interface it came in by
 *   REPLY_TAGGED(ctx)           the frame's outer VLAN tag is kept outside
 *                               it (an skb's metadata): no --reset RST
 */
#ifndef XDPSCAN_SCAN_REPLY_H
#define XDPSCAN_SCAN_REPLY_H

#include "kernel.h"
#include "bpf_helpers.h"
#include "bpf_endian.h"
#include "parse.h"
#include "counters.h"
#include "siphash.h"
#include "tcpreply.h"
#include "ringwake.h"
#include "dedup.h"

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
/* Answer every validated SYN-ACK with a RST sent back (XDP_TX; at TC, a redirect to the
 * interface's egress) instead of
 * only dropping it: the target frees its half-open connection and stops
 * retransmitting. The host stack still never sees the reply. */
volatile const __u8 reset_open = 0;
/* --confirm: a UDP answer may also answer the confirming retry, a second
 * probe to the pair whose hash takes 1 where the first takes the source
 * port 0 (a fresh cookie, probe.UDP.FillConfirm). */
volatile const __u8 udp_confirm = 0;

enum reply_kind {
	REPLY_OPEN = 1,     /* TCP SYN-ACK, or a UDP datagram from the probed port */
	REPLY_CLOSED = 2,   /* TCP RST, or ICMP port unreachable to a UDP probe */
	REPLY_FILTERED = 3, /* another ICMP error quoting the probe (code in the event) */
	REPLY_ALIVE = 4,    /* ICMP echo reply */
};

struct scan_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u8 addr[16];    /* the probed target; IPv4 in the first 4 bytes */
	__u8 from[16];    /* who answered: the target, or a router's ICMP error */
	__u16 port;       /* the target's port, host order; 0 for echo */
	__u16 local_port; /* our probe's source port, host order */
	__u16 ip_id;
	__u16 window;
	__u8 family;      /* 4 or 6 */
	__u8 proto;       /* the probe's protocol: IPPROTO_TCP, _UDP, _ICMP */
	__u8 tcp_flags;
	__u8 ttl;
	__u8 icmp_type;   /* for REPLY_CLOSED/REPLY_FILTERED from an ICMP error */
	__u8 icmp_code;
	__u8 kind;        /* enum reply_kind */
	__u8 confirm;     /* answers the confirming retry (--confirm), not the probe */
};

/* The UDP services whose answers echo cookie bits of our request, keyed by
 * the service's port (probe/payloads.go fills it). kind says where the echo
 * is; len and sum describe the request's payload so that an ICMP error
 * quoting the probe can be checked on its UDP checksum. */
enum udp_echo_kind {
	ECHO_DNS = 1,  /* transaction ID (16 bits) and 0x20 case of "version.bind" (11) */
	ECHO_NTP = 2,  /* origin timestamp = our transmit timestamp (64) */
	ECHO_SNMP = 3, /* request-id (30), at an offset the BER lengths decide */
};

struct udp_echo {
	__u8 kind;
	__u8 pad;
	__u16 len; /* the request's payload length */
	__u32 sum; /* its ones-complement sum with every cookie bit clear */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct udp_echo);
} udp_echoes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct scan_event);
} events SEC(".maps");

/* With replies on several CPUs (several queues, RPS, two senders' answers)
 * each CPU may write a ring of its own (loader.ScanConfig.Rings): the
 * shared ring's reserve lock is then taken by one CPU only. */
#define RING_EVENTS events
#include "cpuring.h"

static __always_inline __u64 load_be64(const __u8 *b)
{
	__u64 v;
	__builtin_memcpy(&v, b, 8);
	return bpf_be64_to_cpu(v);
}

/* probe_cookie is the keyed hash of a probe's tuple (as the probe was
 * sent: src = us, dst = target); probe/cookie.go is its Go twin. Its low 32
 * bits are "the cookie" (TCP sequence, echo id:seq, UDP source port); the
 * high 32 give the IPv4 ID and the UDP payloads' echoed fields (cookie.go
 * names each share). UDP and
 * ICMP probes hash with sport 0 (UDP's source port is derived from the
 * cookie, ICMP has none), ICMP with dport 0 too. */
static __always_inline __u64 probe_cookie(__u8 family, const __u8 *src, const __u8 *dst,
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

static __always_inline int is_us(__u8 family, const __u8 *addr)
{
	if (family == 4) {
		__be32 a;
		__builtin_memcpy(&a, addr, 4);
		return scanner_ipv4 != 0 && a == scanner_ipv4;
	}
	__u64 want0 = scanner_ipv6_hi, want1 = scanner_ipv6_lo, got0, got1;
	__builtin_memcpy(&got0, addr, 8);
	__builtin_memcpy(&got1, addr + 8, 8);
	return (want0 | want1) != 0 && got0 == want0 && got1 == want1;
}

static __always_inline int ours_port(__u16 port)
{
	return port >= sport_lo && port <= sport_hi;
}

/* What a reply must prove, once the cookie of the probe it answers is
 * known. */
enum check {
	CHECK_TCP_ACK = 1,   /* ack - 1 == cookie (or ack == cookie for a RST) */
	CHECK_UDP = 2,       /* our port == udp_sport(cookie), plus the echoed bytes */
	CHECK_ECHO_ID = 3,   /* ICMP id:seq at off == cookie */
	CHECK_QUOTED_SEQ = 4, /* a quoted TCP SYN's sequence number at off == cookie */
	CHECK_QUOTED_UDP = 5, /* a quoted UDP probe: source port, IP ID, length, checksum */
	CHECK_QUOTED_ECHO = 6, /* a quoted echo request: id:seq and IP ID */
};

/* The probe a reply answers, as it was sent. */
struct probe {
	__u8 us[16];
	__u8 target[16];
	__u8 family;
	__u8 proto;
	__u8 kind;
	__u8 check;
	__u16 local_port; /* our source port; 0 for echo */
	__u16 port;       /* the target's; 0 for echo */
	__u32 word;       /* the echoed id:seq, a quoted sequence, or a quoted UDP length:checksum */
};

/* direct_reply fills pr from a TCP or UDP reply sent by the target itself:
 * its destination is our probe's source. */
static __always_inline void direct_reply(const struct packet *p, struct probe *pr, __u8 check)
{
	__builtin_memcpy(pr->us, p->daddr, 16);
	__builtin_memcpy(pr->target, p->saddr, 16);
	pr->proto = p->l4_proto;
	pr->local_port = p->dport;
	pr->port = p->sport;
	pr->check = check;
}

/* quoted_reply fills pr's ports and check from an ICMP error quoting a TCP
 * or UDP probe of ours (the quote's source port is our port): 0 when the
 * quoted probe is not ours. */
static __always_inline int quoted_reply(const struct packet *p, struct probe *pr, __u8 check)
{
	if (!ours_port(p->quote_sport))
		return 0;
	pr->local_port = p->quote_sport;
	pr->port = p->quote_dport;
	pr->check = check;
	pr->word = p->quote_l4_word;
	return 1;
}

/* The cookie's shares (probe/cookie.go names the same). */
static __always_inline __u16 ip_id_of(__u64 h) { return h >> 32; }
/* quoted_ip_id_ok: the quote's IPv4 ID or IPv6 flow label (low 16 bits)
 * is the one our probe carried. */
static __always_inline int quoted_ip_id_ok(const struct packet *p, __u64 h)
{
	return p->quote_ip_id == ip_id_of(h);
}

#include "probe_syn.h"
#include "probe_udp.h"
#include "probe_echo.h"

/* classify says which probe p would answer and how to check it; 0 when p
 * cannot be a reply to any of ours. Each probe kind's own header decides
 * for its answers and for the ICMP errors quoting it. */
static __always_inline int classify(const struct packet *p, struct probe *pr)
{
	pr->family = p->family;
	switch (p->l4_proto) {
	case IPPROTO_TCP:
		return syn_classify(p, pr);
	case IPPROTO_UDP:
		return udp_classify(p, pr);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		break;
	default:
		return 0;
	}
	if (!is_us(p->family, p->daddr))
		return 0;
	if (echo_classify(p, pr))
		return 1;
	if (!p->icmp_error)
		return 0;
	/* parse.h counted a quote too short to read. */
	if (!p->quote_valid || !is_us(p->family, p->quote_saddr))
		return 0;
	__builtin_memcpy(pr->us, p->quote_saddr, 16);
	__builtin_memcpy(pr->target, p->quote_daddr, 16);
	pr->proto = p->quote_proto;
	pr->kind = REPLY_FILTERED;
	switch (p->quote_proto) {
	case IPPROTO_TCP:
		return syn_classify_quote(p, pr);
	case IPPROTO_UDP:
		return udp_classify_quote(p, pr);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return echo_classify_quote(p, pr);
	}
	return 0;
}

/* validate checks the reply against its probe's cookie with the probe
 * kind's validator: 0 when it fails, 1 for an answer to the probe, 2 for
 * one to its confirming retry. */
static __always_inline int validate(PKT_CTX *ctx, const struct packet *p, const struct probe *pr)
{
	switch (pr->proto) {
	case IPPROTO_TCP:
		return syn_validate(p, pr);
	case IPPROTO_UDP:
		return udp_validate(ctx, p, pr);
	}
	return echo_validate(p, pr);
}

/* ring_flags is for a reserved (not yet submitted) scan_event: the unread
 * data already counts it. */
static __always_inline __u64 ring_flags(void *ring)
{
	if (!ring_wakeup_bytes)
		return 0;
	return ring_wakeup_flags(bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA),
				 ring_record_bytes(sizeof(struct scan_event)), ring_wakeup_bytes);
}

/* verdict_for_ours is the fate of a validated reply: a SYN-ACK becomes our
 * RST when reset_open is set (untagged, no IPv4 options nor IPv6 extension
 * headers), else dropped. */
static __always_inline int verdict_for_ours(PKT_CTX *ctx, const struct packet *p, int kind, __u32 ack)
{
	if (!reset_open || kind != REPLY_OPEN || p->l4_proto != IPPROTO_TCP || p->vlan_depth || REPLY_TAGGED(ctx))
		return VERDICT_DROP;
	int rc;
	if (p->family == 4 && p->l4_off == sizeof(struct ethhdr) + sizeof(struct iphdr))
		rc = tcp_reply(ctx, p->len, TCP_FLAG_RST, ack, 0, 0);
	else if (p->family == 6 && p->l4_off == sizeof(struct ethhdr) + sizeof(struct ipv6hdr))
		rc = tcp_reply6(ctx, p->len, TCP_FLAG_RST, ack, 0, 0);
	else
		return VERDICT_DROP;
	if (rc)
		return VERDICT_DROP;
	count(COUNTER_TX, 1);
	return VERDICT_SEND_BACK(ctx);
}

/* scan_reply is the whole of the program for one packet: its verdict,
 * VERDICT_PASS for anything not a validated reply of this scan. */
static __always_inline int scan_reply(PKT_CTX *ctx)
{
	struct packet p = {};
	struct probe pr = {};

	int res;
	struct counter_block *c = parse_counted(ctx, &p, &res);
	if (!c)
		return VERDICT_PASS;
	if (res != PARSE_L4 || !classify(&p, &pr))
		return VERDICT_PASS;
	int valid = validate(ctx, &p, &pr);
	if (!valid) {
		count_in(c, COUNTER_BAD_COOKIE, 1);
		return VERDICT_PASS;
	}

	/* From here on the packet is ours: it never reaches the host stack. */
	count_in(c, COUNTER_MATCHED, 1);
	count_in(c, COUNTER_DROPPED, 1);
	__u32 ack = 0;
	__u16 window = 0;
	if (pr.check == CHECK_TCP_ACK) {
		ack = p.tcp_ack;
		window = p.tcp_window;
	}
	int kind = pr.kind;

	/* Keyed by pair and state class (open, or closed/filtered): a later
	 * answer of the other class still reaches user space, which counts the
	 * conflict and keeps the better-validated one (scan/conflict.go);
	 * first-wins in the kernel would let a forged early answer hide the
	 * real one. */
	__u8 class = kind == REPLY_OPEN ? 0x10 : kind == REPLY_ALIVE ? 0 : 0x20;
	if (valid == 2)
		class |= 0x40; /* the confirming retry's answer is another report */
	__u64 fp = dedup_fingerprint(pr.target, pr.port, pr.proto, pr.family | class);
	__u64 *slot = dedup_add(fp);
	if (!slot) {
		count_in(c, COUNTER_DUPLICATES, 1);
		return verdict_for_ours(ctx, &p, kind, ack);
	}

	void *ring = ring_here();
	struct scan_event *e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		count_in(c, COUNTER_RING_LOST, 1);
		/* Forget the pair so the target's retransmission can still be
		 * reported once the reader catches up. */
		dedup_forget(slot, fp);
		return VERDICT_DROP; /* no RST: let the target retransmit */
	}
	e->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(e->addr, pr.target, 16);
	__builtin_memcpy(e->from, p.saddr, 16);
	e->port = pr.port;
	e->local_port = pr.local_port;
	e->ip_id = p.ip_id;
	e->window = window;
	e->family = pr.family;
	e->proto = pr.proto;
	e->tcp_flags = p.l4_proto == IPPROTO_TCP ? p.tcp_flags : 0;
	e->ttl = p.ttl;
	e->icmp_type = p.icmp_error ? p.icmp_type : 0;
	e->icmp_code = p.icmp_error ? p.icmp_code : 0;
	e->kind = kind;
	e->confirm = valid == 2;
	bpf_ringbuf_submit(e, ring_flags(ring));
	return verdict_for_ours(ctx, &p, kind, ack);
}

#endif /* XDPSCAN_SCAN_REPLY_H */
