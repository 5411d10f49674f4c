/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters shared by xdpscan's XDP programs. Each program that
 * includes this header gets its own "counters" map, one block of COUNTER_MAX
 * per CPU; Go sums the CPUs.
 *
 * Invariants checked by the tests (once Go has added in the frame shapes'
 * counts): packets == l2_errors + non_ip + ipv4 + ipv6, and tcp == the sum
 * of the five TCP flag classes.
 */
#ifndef XDPSCAN_COUNTERS_H
#define XDPSCAN_COUNTERS_H

#include "parse.h"

enum counter_idx {
	COUNTER_PACKETS = 0,
	COUNTER_BYTES,
	COUNTER_L2_ERRORS,
	COUNTER_NON_IP,
	COUNTER_IPV4,
	COUNTER_IPV6,
	COUNTER_VLAN,
	COUNTER_FRAGMENTS,
	COUNTER_TCP,
	COUNTER_UDP,
	COUNTER_ICMP,
	COUNTER_ICMPV6,
	COUNTER_OTHER_L4,
	COUNTER_PARSE_ERRORS,
	COUNTER_BAD_QUOTES,
	COUNTER_MATCHED,
	COUNTER_BAD_COOKIE,
	COUNTER_DUPLICATES,
	COUNTER_RING_LOST,
	COUNTER_DROPPED,
	COUNTER_TX,
	/* Received at TC ingress with no MAC header in view, after a generic
	 * XDP program with xdp.frags (skbmac.h), and not filtered: a filter
	 * expression reads a frame from its MAC header. */
	COUNTER_NO_MAC,
	/* TCP by flag class; they add up to COUNTER_TCP. */
	COUNTER_TCP_SYN,     /* SYN without ACK: connection attempts, scans */
	COUNTER_TCP_SYN_ACK, /* SYN+ACK: accepted connections, open ports */
	COUNTER_TCP_RST,     /* RST (with or without ACK): refusals, aborts */
	COUNTER_TCP_FIN,     /* FIN without RST: orderly closes */
	COUNTER_TCP_OTHER,   /* the rest: ACKs, data */
	/* Frames count_frame classified inline, by shape (enum frame_shape
	 * in shape.h, in its order): each stands for one more packet, IPv4 or IPv6
	 * packet and UDP or TCP header, which Go adds in (loader.ReadCounters):
	 * one count on the hot path, not four. */
	COUNTER_SHAPE_IPV4_UDP,
	COUNTER_SHAPE_IPV4_TCP,
	COUNTER_SHAPE_IPV6_UDP,
	COUNTER_SHAPE_IPV6_TCP,
	COUNTER_MAX,
};

/* Puts enum counter_idx in BTF, which only names the block's size otherwise:
 * bpf2go exports it to Go for the counters' order (loader.Counters). */
const enum counter_idx counters_in_block = COUNTER_MAX;

/* All counters of a CPU in one map value: a packet's several counts cost one
 * map lookup, not one each. */
struct counter_block {
	__u64 n[COUNTER_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter_block);
} counters SEC(".maps");

/* counters_here is this CPU's block (never NULL in practice: key 0 exists). */
static __always_inline struct counter_block *counters_here(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&counters, &zero);
}

/* count_in adds n to counter idx, which must be a constant. Without
 * CAP_PERFMON the verifier hardens map-value + register adds against
 * Spectre v1, and refuses one such add reached by paths whose indexes
 * differ ("different maps, paths or scalars"): clang merges count_in calls
 * of different constant indexes behind a branch into exactly that. An
 * immediate offset is never hardened, and the "i" constraint makes every
 * count one (a non-constant idx does not compile); clang cannot merge
 * inline asm with different operands. */
#define count_in(blk, idx_, n_)                                               \
	do {                                                                  \
		__u64 __v;                                                    \
		_Static_assert((idx_) < COUNTER_MAX, "counter index");       \
		asm volatile("%[v] = *(u64 *)(%[cb] + %[off])\n\t"             \
			     "%[v] += %[add]\n\t"                               \
			     "*(u64 *)(%[cb] + %[off]) = %[v]"                \
			     : [v] "=&r"(__v)                                 \
			     : [cb] "r"(blk), [off] "i"((idx_) * 8), [add] "r"((__u64)(n_)) \
			     : "memory");                                     \
	} while (0)

#define count(idx_, n_)                                                       \
	do {                                                                  \
		struct counter_block *__blk = counters_here();                \
		if (__blk)                                                    \
			count_in(__blk, idx_, n_);                            \
	} while (0)

/* count_tcp_class counts a TCP header in its flag class (TCP_FLAG_* in
 * kernel.h; a branch for each, so that each count has a constant index:
 * see count_in). */
static __always_inline void count_tcp_class(struct counter_block *c, __u8 flags)
{
	if (flags & TCP_FLAG_RST)
		count_in(c, COUNTER_TCP_RST, 1);
	else if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK))
		count_in(c, COUNTER_TCP_SYN_ACK, 1);
	else if (flags & TCP_FLAG_SYN)
		count_in(c, COUNTER_TCP_SYN, 1);
	else if (flags & TCP_FLAG_FIN)
		count_in(c, COUNTER_TCP_FIN, 1);
	else
		count_in(c, COUNTER_TCP_OTHER, 1);
}

/* count_parse classifies one parsed frame into the protocol counters. */
static __always_inline void count_parse(struct counter_block *c, const struct packet *p, int res)
{
	count_in(c, COUNTER_PACKETS, 1);
	count_in(c, COUNTER_BYTES, p->len);
	if (p->vlan_depth)
		count_in(c, COUNTER_VLAN, 1);

	if (res == PARSE_ERR_L2) {
		count_in(c, COUNTER_L2_ERRORS, 1);
		count_in(c, COUNTER_PARSE_ERRORS, 1);
		return;
	}
	if (res == PARSE_NOT_IP) {
		count_in(c, COUNTER_NON_IP, 1);
		return;
	}
	if (p->eth_proto == ETH_P_IP)
		count_in(c, COUNTER_IPV4, 1);
	else
		count_in(c, COUNTER_IPV6, 1);
	if (res == PARSE_ERR) {
		count_in(c, COUNTER_PARSE_ERRORS, 1);
		return;
	}
	if (p->fragment)
		count_in(c, COUNTER_FRAGMENTS, 1);
	if (res != PARSE_L4) {
		count_in(c, COUNTER_OTHER_L4, 1);
		return;
	}
	switch (p->l4_proto) { /* a count_in each, constant indexes: see count_in */
	case IPPROTO_TCP:
		count_in(c, COUNTER_TCP, 1);
		count_tcp_class(c, p->tcp_flags);
		break;
	case IPPROTO_UDP:
		count_in(c, COUNTER_UDP, 1);
		break;
	case IPPROTO_ICMP:
		count_in(c, COUNTER_ICMP, 1);
		break;
	case IPPROTO_ICMPV6:
		count_in(c, COUNTER_ICMPV6, 1);
		break;
	}
	if (p->icmp_error && !p->quote_valid)
		count_in(c, COUNTER_BAD_QUOTES, 1);
}

/* parse_counted parses ctx's frame into p (zeroed by the caller), stores
 * parse_packet's result in *res and counts the frame in this CPU's block,
 * which it returns; NULL (a failed lookup, never seen) means the frame was
 * neither counted nor should be handled further. Every program starts so. */
static __always_inline struct counter_block *parse_counted(PKT_CTX *ctx, struct packet *p, int *res)
{
	*res = parse_packet(ctx, p);
	struct counter_block *c = counters_here();
	if (c)
		count_parse(c, p, *res);
	return c;
}

#endif /* XDPSCAN_COUNTERS_H */
