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
	/* TCP by flag class; they add up to COUNTER_TCP. */
	COUNTER_TCP_SYN,     /* SYN without ACK: connection attempts, scans */
	COUNTER_TCP_SYN_ACK, /* SYN+ACK: accepted connections, open ports */
	COUNTER_TCP_RST,     /* RST (with or without ACK): refusals, aborts */
	COUNTER_TCP_FIN,     /* FIN without RST: orderly closes */
	COUNTER_TCP_OTHER,   /* the rest: ACKs, data */
	/* Frames count_frame classified inline, by shape (enum frame_shape
	 * below, in its order): each stands for one more packet, IPv4 or IPv6
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

/* TCP header flag bits (byte 13). */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* count_tcp_class counts a TCP header in its flag class (a branch for
 * each, so that each count has a constant index: see count_in). */
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
	switch (p->l4_proto) {
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
static __always_inline struct counter_block *parse_counted(struct xdp_md *ctx, struct packet *p, int *res)
{
	*res = parse_packet(ctx, p);
	struct counter_block *c = counters_here();
	if (c)
		count_parse(c, p, *res);
	return c;
}

/* Frame shapes count_frame classifies inline, every other frame being
 * SHAPE_OTHER. A program can run code specialized for a shape: the capture
 * program's filter knows where every header is (loader.shapedFilters, which
 * must claim no more than count_frame checks). */
enum frame_shape {
	SHAPE_OTHER = 0,
	SHAPE_IPV4_UDP, /* untagged, IPv4 without options, not a fragment, UDP */
	SHAPE_IPV4_TCP, /* the same with TCP */
	SHAPE_IPV6_UDP, /* untagged, IPv6 without extension headers, UDP */
	SHAPE_IPV6_TCP, /* the same with TCP */
};

/* tcp_shape is the shape a TCP header that count_frame found inside an IP
 * packet with room bytes for it makes (udp_shape + 1), with its flag class
 * counted; SHAPE_OTHER, counting nothing, when the full parser would call
 * it malformed. */
static __always_inline enum frame_shape tcp_shape(struct counter_block *c, struct tcphdr *th, void *data_end, __u32 room,
						  enum frame_shape udp_shape)
{
	asm volatile("" : "+r"(th)); /* as in udp_shape */
	if ((void *)(th + 1) > data_end)
		return SHAPE_OTHER;
	__u32 doff = (th->doff_res >> 4) * 4;
	if (doff < sizeof(*th) || doff > room)
		return SHAPE_OTHER;
	count_tcp_class(c, th->flags);
	return udp_shape + 1;
}

/* udp_shape, the same for a UDP header. */
static __always_inline enum frame_shape udp_shape(struct udphdr *uh, void *data_end, __u32 room, enum frame_shape udp_shape)
{
	/* room and the IP length check imply the bounds check, and clang drops
	 * it; the verifier does not follow that reasoning and wants the check:
	 * hide from clang where uh comes from. */
	asm volatile("" : "+r"(uh));
	if ((void *)(uh + 1) > data_end || room < sizeof(*uh) || bpf_ntohs(uh->len) < sizeof(*uh))
		return SHAPE_OTHER;
	return udp_shape;
}

/* transport_shape is the shape the TCP or UDP header at l4 makes with an
 * IP header of udp_shape's family; SHAPE_OTHER for another protocol or a
 * header the full parser would call malformed. */
static __always_inline enum frame_shape transport_shape(struct counter_block *c, __u8 proto, void *l4, void *data_end,
							__u32 room, enum frame_shape udp)
{
	if (proto == IPPROTO_UDP)
		return udp_shape(l4, data_end, room, udp);
	if (proto == IPPROTO_TCP)
		return tcp_shape(c, l4, data_end, room, udp);
	return SHAPE_OTHER;
}

/* count_frame counts ctx's frame in c as parse_counted does (once Go has
 * added in the shapes' counts), for a program that wants the counts but
 * none of the parsed fields (capture), and returns its shape.
 * What busy links carry, the frame shapes above, is classified inline from
 * a few header fields and counted as its shape and its bytes (and a TCP
 * header's flag class); everything else goes through parse_packet. The inline path saves parse_packet's call, its
 * zeroed 104-byte struct and its address copies: 22 -> 14 ns per packet
 * for the count-only capture (BPF_PROG_RUN). The tests hold it to
 * parse_counted's counts, frame by frame. */
static __always_inline enum frame_shape count_frame(struct xdp_md *ctx, struct counter_block *c)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = frame_len(ctx);
	enum frame_shape shape;
	/* The shortest frame the inline path takes: Ethernet, IPv4, UDP. */
	if (data + sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) > data_end)
		goto full;
	__be16 proto = *(__be16 *)(data + offsetof(struct ethhdr, h_proto));
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		if (ip->version_ihl != 0x45 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			goto full;
		__u32 tot_len = bpf_ntohs(ip->tot_len);
		if (tot_len < sizeof(*ip) || sizeof(struct ethhdr) + tot_len > len)
			goto full;
		__u32 room = tot_len - sizeof(*ip);
		shape = transport_shape(c, ip->protocol, ip + 1, data_end, room, SHAPE_IPV4_UDP);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > data_end || (ip6->version_prio >> 4) != 6)
			goto full;
		__u32 room = bpf_ntohs(ip6->payload_len);
		if (sizeof(struct ethhdr) + sizeof(*ip6) + room > len)
			goto full;
		shape = transport_shape(c, ip6->nexthdr, ip6 + 1, data_end, room, SHAPE_IPV6_UDP);
	} else {
		goto full;
	}
	switch (shape) { /* constant counter indexes: see count_in */
	case SHAPE_IPV4_UDP:
		count_in(c, COUNTER_SHAPE_IPV4_UDP, 1);
		break;
	case SHAPE_IPV4_TCP:
		count_in(c, COUNTER_SHAPE_IPV4_TCP, 1);
		break;
	case SHAPE_IPV6_UDP:
		count_in(c, COUNTER_SHAPE_IPV6_UDP, 1);
		break;
	case SHAPE_IPV6_TCP:
		count_in(c, COUNTER_SHAPE_IPV6_TCP, 1);
		break;
	default:
		goto full;
	}
	count_in(c, COUNTER_BYTES, len);
	return shape;
full:;
	struct packet p = {};
	count_parse(c, &p, parse_packet(ctx, &p));
	return SHAPE_OTHER;
}

#endif /* XDPSCAN_COUNTERS_H */
