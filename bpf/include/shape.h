/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The frame-shape classifier: count_frame counts a frame as parse_counted
 * (counters.h) does, classifying what busy links carry (untagged TCP and
 * UDP over IPv4 without options or IPv6 without extension headers) inline
 * from a few header fields, and returns the frame's shape, for which a
 * program can run specialized code (the capture program's filter).
 */
#ifndef XDPSCAN_SHAPE_H
#define XDPSCAN_SHAPE_H

#include "counters.h"

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
static __always_inline enum frame_shape count_frame(PKT_CTX *ctx, struct counter_block *c)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = frame_len(ctx);
	enum frame_shape shape;
	/* An skb may have no MAC header in view (skbmac.h): the full parser
	 * knows. Never for XDP. */
	if (PKT_L3_AT_DATA(ctx))
		goto full;
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
	/* A branch and a count_in for each shape, like count_parse's for each
	 * protocol, rather than one count at COUNTER_SHAPE_IPV4_UDP + shape:
	 * that index is a register, and a map value + register add is what
	 * the verifier hardens (more instructions) or refuses without
	 * CAP_PERFMON; see count_in. */
	switch (shape) {
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

#endif /* XDPSCAN_SHAPE_H */
