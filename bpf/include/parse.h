/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing shared by xdpscan's XDP programs.
 *
 * The parser records byte offsets and header fields, never pointers, and
 * reads every header found at a variable offset by copying it to the stack
 * with bpf_xdp_load_bytes (Linux 5.18). That is what lets the programs load
 * with CAP_BPF + CAP_NET_ADMIN alone: without CAP_PERFMON the verifier
 * hardens against Spectre v1 and refuses adding a register to a packet
 * pointer ("pointer arithmetic with it prohibited for !root"), comparing a
 * packet pointer with NULL, and subtracting pointers. Only constant offsets
 * may be added to packet pointers (pkt_fits and PKT_CONST below); the
 * frame's length comes from bpf_xdp_get_buff_len.
 */
#ifndef XDPSCAN_PARSE_H
#define XDPSCAN_PARSE_H

#include "kernel.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"
#include "pktctx.h"

#define PARSE_MAX_OFF 1500
#define VLAN_MAX_DEPTH 2
#define IPV6_MAX_EXT_HEADERS 6

/* pkt_load copies size bytes at off of ctx's frame to dst, a stack object:
 * 0, or an error when they lie past the frame's end. */
static __always_inline int pkt_load(PKT_CTX *ctx, __u32 off, void *dst, __u32 size)
{
	return PKT_LOAD(ctx, off, dst, size);
}

/* frame_len is the frame's length as a number (data_end - data is a
 * pointer subtraction, which the verifier refuses without CAP_PERFMON). */
static __always_inline __u32 frame_len(PKT_CTX *ctx)
{
	return PKT_LEN(ctx);
}

enum parse_result {
	/* An L4 header (TCP, UDP, ICMP, ICMPv6: at least 8 bytes) was found. */
	PARSE_L4 = 0,
	/* IP, but no L4 header to read: a non-first fragment, ESP, no next
	 * header, or an L4 protocol we do not parse. */
	PARSE_L3 = 1,
	/* Not IPv4/IPv6 (ARP, LLDP, ...). */
	PARSE_NOT_IP = 2,
	/* Malformed or truncated at L2. */
	PARSE_ERR_L2 = 3,
	/* Malformed or truncated at L3 or L4. */
	PARSE_ERR = 4,
};

struct packet {
	__u32 len;         /* frame length */
	__u16 eth_proto;   /* innermost ethertype, host order */
	__u8 vlan_depth;   /* 0..2 */
	__u8 family;       /* 4, 6, or 0 */
	__u16 l3_off;
	__u16 l4_off;
	__u16 ip_end;      /* where the IP packet ends: frame bytes past it are padding */
	__u8 l4_proto;     /* IPPROTO_*, valid when family != 0 */
	__u8 fragment;     /* any fragment (first or not) */
	__u8 ttl;          /* TTL or hop limit */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 icmp_error;   /* an ICMP/ICMPv6 error, which quotes a header */
	__u8 pad;
	__u16 ip_id;       /* IPv4 ID, host order; 0 for IPv6 */
	__u16 sport;       /* host order, TCP/UDP only */
	__u16 dport;
	__u16 tcp_window;  /* host order */
	__u32 tcp_ack;     /* host order */
	/* ICMP/ICMPv6: the 4 bytes after type, code and checksum (an echo's
	 * id:seq), host order. */
	__u32 icmp_rest;
	/* Aligned so an address is copied in words, not bytes. */
	__u8 saddr[16] __attribute__((aligned(4))); /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16] __attribute__((aligned(4)));
	/* ICMP/ICMPv6 error quotes: the header of the packet that caused it. */
	__u8 quote_valid;  /* inner IP and 8 bytes of inner L4 were present */
	__u8 quote_proto;
	__u16 quote_sport; /* host order */
	__u16 quote_dport;
	__u16 quote_l4_off;
	__u16 quote_ip_id; /* the quoted IPv4 header's ID, or the low 16 bits of the IPv6 flow label; host order */
	__u16 quote_pad;
	/* Bytes 4-7 of the quoted L4 header, host order: a TCP probe's
	 * sequence number, a UDP probe's length and checksum, an echo's id:seq. */
	__u32 quote_l4_word;
	__u8 quote_saddr[16] __attribute__((aligned(4)));
	__u8 quote_daddr[16] __attribute__((aligned(4)));
};

static __always_inline int is_icmp_error(__u8 family, __u8 type)
{
	if (family == 4)
		return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
		       type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

/* dst is one of struct packet's aligned address fields: word stores. */
static __always_inline void copy_addr4(__u8 *dst, __be32 addr)
{
	__builtin_memcpy(__builtin_assume_aligned(dst, 4), &addr, 4);
}

static __always_inline void copy_addr6(__u8 *dst, const struct in6_addr *src)
{
	__builtin_memcpy(__builtin_assume_aligned(dst, 4), src, 16);
}

/* within_ip says whether size bytes at off lie inside the IP packet (its
 * length field, not the frame, bounds the transport header). */
static __always_inline int within_ip(const struct packet *p, __u32 off, __u32 size)
{
	return off + size <= p->ip_end;
}

/* The first 8 bytes of a transport header: all a quote must hold. */
struct l4_head {
	__be16 source;
	__be16 dest;
	__be32 word; /* TCP: sequence; UDP: length, checksum; ICMP: id:seq */
};

/* parse_quote reads the IP header and first 8 L4 bytes quoted by an ICMP or
 * ICMPv6 error starting at off. RFC 792 and RFC 4443 guarantee at least that
 * much; anything shorter leaves quote_valid = 0. Quoted IPv6 extension
 * headers are not walked: scan probes never carry any. */
static __always_inline void parse_quote(PKT_CTX *ctx, struct packet *p, __u32 off)
{
	struct l4_head l4;
	if (p->family == 4) {
		struct iphdr ip;
		if (pkt_load(ctx, off, &ip, sizeof(ip)) || (ip.version_ihl >> 4) != 4)
			return;
		__u32 ihl = (ip.version_ihl & 0x0f) * 4;
		if (ihl < sizeof(struct iphdr))
			return;
		off += ihl;
		if (off > PARSE_MAX_OFF || !within_ip(p, off, sizeof(l4)) || pkt_load(ctx, off, &l4, sizeof(l4)))
			return;
		p->quote_proto = ip.protocol;
		p->quote_ip_id = bpf_ntohs(ip.id);
		copy_addr4(p->quote_saddr, ip.saddr);
		copy_addr4(p->quote_daddr, ip.daddr);
	} else {
		struct ipv6hdr ip6;
		if (pkt_load(ctx, off, &ip6, sizeof(ip6)) || (ip6.version_prio >> 4) != 6)
			return;
		off += sizeof(struct ipv6hdr);
		if (!within_ip(p, off, sizeof(l4)) || pkt_load(ctx, off, &l4, sizeof(l4)))
			return;
		p->quote_proto = ip6.nexthdr;
		p->quote_ip_id = (__u16)ip6.flow_lbl[1] << 8 | ip6.flow_lbl[2];
		copy_addr6(p->quote_saddr, &ip6.saddr);
		copy_addr6(p->quote_daddr, &ip6.daddr);
	}
	p->quote_sport = bpf_ntohs(l4.source);
	p->quote_dport = bpf_ntohs(l4.dest);
	p->quote_l4_word = bpf_ntohl(l4.word);
	p->quote_l4_off = off;
	p->quote_valid = 1;
}

/* parse_l4 reads the transport header at p->l4_off. */
static __always_inline int parse_l4(PKT_CTX *ctx, struct packet *p)
{
	__u32 off = p->l4_off;

	switch (p->l4_proto) {
	case IPPROTO_TCP: {
		struct tcphdr th;
		if (!within_ip(p, off, sizeof(th)) || pkt_load(ctx, off, &th, sizeof(th)))
			return PARSE_ERR;
		__u32 doff = (th.doff_res >> 4) * 4;
		if (doff < sizeof(struct tcphdr) || !within_ip(p, off, doff))
			return PARSE_ERR;
		p->sport = bpf_ntohs(th.source);
		p->dport = bpf_ntohs(th.dest);
		p->tcp_flags = th.flags;
		p->tcp_ack = bpf_ntohl(th.ack_seq);
		p->tcp_window = bpf_ntohs(th.window);
		return PARSE_L4;
	}
	case IPPROTO_UDP: {
		struct udphdr uh;
		if (!within_ip(p, off, sizeof(uh)) || pkt_load(ctx, off, &uh, sizeof(uh)))
			return PARSE_ERR;
		if (bpf_ntohs(uh.len) < sizeof(struct udphdr))
			return PARSE_ERR;
		p->sport = bpf_ntohs(uh.source);
		p->dport = bpf_ntohs(uh.dest);
		return PARSE_L4;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		if ((p->l4_proto == IPPROTO_ICMP) != (p->family == 4))
			return PARSE_L3; /* ICMPv4 in IPv6 or the reverse: not ours to read */
		struct icmphdr ih;
		if (!within_ip(p, off, sizeof(ih)) || pkt_load(ctx, off, &ih, sizeof(ih)))
			return PARSE_ERR;
		p->icmp_type = ih.type;
		p->icmp_code = ih.code;
		p->icmp_rest = (__u32)bpf_ntohs(ih.id) << 16 | bpf_ntohs(ih.sequence);
		p->icmp_error = is_icmp_error(p->family, ih.type);
		if (p->icmp_error)
			parse_quote(ctx, p, off + sizeof(struct icmphdr));
		return PARSE_L4;
	}
	default:
		return PARSE_L3;
	}
}

static __always_inline int parse_ipv4(PKT_CTX *ctx, struct packet *p)
{
	struct iphdr ip;
	if (pkt_load(ctx, p->l3_off, &ip, sizeof(ip)))
		return PARSE_ERR;
	__u32 ihl = (ip.version_ihl & 0x0f) * 4;
	if ((ip.version_ihl >> 4) != 4 || ihl < sizeof(struct iphdr))
		return PARSE_ERR;
	__u32 tot_len = bpf_ntohs(ip.tot_len);
	/* The frame may carry Ethernet padding past tot_len, never less. */
	if (tot_len < ihl || p->l3_off + tot_len > p->len)
		return PARSE_ERR;

	p->family = 4;
	p->ip_end = p->l3_off + tot_len;
	p->l4_proto = ip.protocol;
	p->ttl = ip.ttl;
	p->ip_id = bpf_ntohs(ip.id);
	copy_addr4(p->saddr, ip.saddr);
	copy_addr4(p->daddr, ip.daddr);

	__u16 frag = bpf_ntohs(ip.frag_off);
	if (frag & (IP_MF | IP_OFFSET))
		p->fragment = 1;
	if (frag & IP_OFFSET)
		return PARSE_L3; /* only the first fragment carries the L4 header */

	p->l4_off = p->l3_off + ihl;
	return parse_l4(ctx, p);
}

/* skip_opt_hdr steps over the extension header at *off, which starts with
 * next header and a length, (hdrlen + extra) * unit bytes long, and sets
 * *next to the header after it; h is the caller's buffer (one stack slot
 * for every header kind). Returns 0, or -1 when it is not there.
 * Each case calls it with constants of its own, rather than one case for
 * both lengths: a shared case makes clang test the header type with a
 * bitmask, four instructions more for every IPv6 frame, most of which
 * have no extension header at all. */
static __always_inline int skip_opt_hdr(PKT_CTX *ctx, __u32 *off, __u8 *next, struct ipv6_opt_hdr *h, __u32 extra, __u32 unit)
{
	if (pkt_load(ctx, *off, h, sizeof(*h)))
		return -1;
	*next = h->nexthdr;
	*off += ((__u32)h->hdrlen + extra) * unit;
	return 0;
}

static __always_inline int parse_ipv6(PKT_CTX *ctx, struct packet *p)
{
	struct ipv6hdr ip6;
	if (pkt_load(ctx, p->l3_off, &ip6, sizeof(ip6)))
		return PARSE_ERR;
	if ((ip6.version_prio >> 4) != 6)
		return PARSE_ERR;
	__u32 off = p->l3_off + sizeof(struct ipv6hdr);
	__u32 payload_len = bpf_ntohs(ip6.payload_len);
	if (off + payload_len > p->len)
		return PARSE_ERR;
	p->ip_end = off + payload_len;

	p->family = 6;
	p->ttl = ip6.hop_limit;
	copy_addr6(p->saddr, &ip6.saddr);
	copy_addr6(p->daddr, &ip6.daddr);
	__u8 next = ip6.nexthdr;

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		if (off > PARSE_MAX_OFF)
			return PARSE_ERR;
		/* Every header walked here starts with next header and length;
		 * a fragment header is 8 bytes in all. */
		struct frag_hdr h;
		switch (next) {
		case IPPROTO_HOPOPTS:
			/* RFC 8200 4.1: only right after the IPv6 header; the
			 * kernel rejects it anywhere else, and so do we. */
			if (i > 0)
				return PARSE_ERR;
			/* fall through */
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			/* hdrlen: 8-byte units past the first 8 (RFC 8200 4.3) */
			if (skip_opt_hdr(ctx, &off, &next, (struct ipv6_opt_hdr *)&h, 1, 8))
				return PARSE_ERR;
			break;
		case IPPROTO_AH:
			/* hdrlen: 4-byte units past the first 8 (RFC 4302 2.2) */
			if (skip_opt_hdr(ctx, &off, &next, (struct ipv6_opt_hdr *)&h, 2, 4))
				return PARSE_ERR;
			break;
		case IPPROTO_FRAGMENT:
			if (pkt_load(ctx, off, &h, sizeof(h)))
				return PARSE_ERR;
			p->fragment = 1;
			p->l4_proto = h.nexthdr;
			if (bpf_ntohs(h.frag_off) & ~0x7)
				return PARSE_L3; /* non-first fragment */
			next = h.nexthdr;
			off += sizeof(struct frag_hdr);
			break;
		default:
			goto done;
		}
	}
	/* Still inside extension headers after the bounded walk. */
	p->l4_proto = next;
	return PARSE_L3;
done:
	if (off > PARSE_MAX_OFF)
		return PARSE_ERR;
	p->l4_proto = next;
	p->l4_off = off;
	return parse_l4(ctx, p);
}

/* parse_plain_ipv4 is parse_ipv4 for what busy links mostly carry, an
 * untagged IPv4 packet without options, read in place at constant offsets
 * (the only packet pointer arithmetic the verifier allows without
 * CAP_PERFMON): TCP and UDP need no helper call. BPF_PROG_RUN, a frame for
 * another port: 27 ns through copies, back to 13 ns this way. It returns -1,
 * having changed nothing, for any other frame. */
static __always_inline int parse_plain_ipv4(PKT_CTX *ctx, struct packet *p, void *data, void *data_end)
{
	const struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > data_end || ip->version_ihl != 0x45)
		return -1;
	__u32 tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < sizeof(*ip) || sizeof(struct ethhdr) + tot_len > p->len)
		return PARSE_ERR;
	p->family = 4;
	p->ip_end = sizeof(struct ethhdr) + tot_len;
	p->l4_proto = ip->protocol;
	p->ttl = ip->ttl;
	p->ip_id = bpf_ntohs(ip->id);
	copy_addr4(p->saddr, ip->saddr);
	copy_addr4(p->daddr, ip->daddr);
	__u16 frag = bpf_ntohs(ip->frag_off);
	if (frag & (IP_MF | IP_OFFSET))
		p->fragment = 1;
	if (frag & IP_OFFSET)
		return PARSE_L3;
	const __u32 off = sizeof(struct ethhdr) + sizeof(*ip);
	p->l4_off = off;
	if (ip->protocol == IPPROTO_TCP) {
		const struct tcphdr *th = data + off;
		if ((void *)(th + 1) > data_end)
			return PKT_PAST_LINEAR(ctx, p);
		if (!within_ip(p, off, sizeof(*th)))
			return PARSE_ERR;
		__u32 doff = (th->doff_res >> 4) * 4;
		if (doff < sizeof(struct tcphdr) || !within_ip(p, off, doff))
			return PARSE_ERR;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcp_flags = th->flags;
		p->tcp_ack = bpf_ntohl(th->ack_seq);
		p->tcp_window = bpf_ntohs(th->window);
		return PARSE_L4;
	}
	if (ip->protocol == IPPROTO_UDP) {
		const struct udphdr *uh = data + off;
		if ((void *)(uh + 1) > data_end)
			return PKT_PAST_LINEAR(ctx, p);
		if (!within_ip(p, off, sizeof(*uh)) || bpf_ntohs(uh->len) < sizeof(struct udphdr))
			return PARSE_ERR;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		return PARSE_L4;
	}
	if (ip->protocol == IPPROTO_ICMP) {
		/* An error quoting a plain IPv4 probe: a UDP scan's closed
		 * ports. Header and quote in place, as parse_l4 and
		 * parse_quote would read them (70 -> 50 ns). */
		const struct icmphdr *ih = data + off;
		const struct iphdr *qip = data + off + sizeof(*ih);
		const struct l4_head *ql4 = data + off + sizeof(*ih) + sizeof(*qip);
		if ((void *)(ql4 + 1) > data_end || qip->version_ihl != 0x45 || !is_icmp_error(4, ih->type) ||
		    !within_ip(p, off + sizeof(*ih) + sizeof(*qip), sizeof(*ql4)))
			return parse_l4(ctx, p);
		p->icmp_type = ih->type;
		p->icmp_code = ih->code;
		p->icmp_rest = (__u32)bpf_ntohs(ih->id) << 16 | bpf_ntohs(ih->sequence);
		p->icmp_error = 1;
		p->quote_proto = qip->protocol;
		p->quote_ip_id = bpf_ntohs(qip->id);
		copy_addr4(p->quote_saddr, qip->saddr);
		copy_addr4(p->quote_daddr, qip->daddr);
		p->quote_sport = bpf_ntohs(ql4->source);
		p->quote_dport = bpf_ntohs(ql4->dest);
		p->quote_l4_word = bpf_ntohl(ql4->word);
		p->quote_l4_off = off + sizeof(*ih) + sizeof(*qip);
		p->quote_valid = 1;
		return PARSE_L4;
	}
	return parse_l4(ctx, p);
}

static __always_inline int is_vlan_proto(__u16 proto)
{
	return proto == ETH_P_8021Q || proto == ETH_P_8021AD;
}

/* parse_packet fills p, which the caller zeroed, from the frame in ctx.
 *
 * A global function (Linux 5.6): the verifier checks it once, on its own,
 * instead of once for every path that reaches each of its callers' later
 * branches; loading a program then costs a fraction of the verifier time
 * (the largest fixed cost of a short scan). */
__attribute__((noinline)) int parse_packet(PKT_CTX *ctx, struct packet *p)
{
	if (!p) /* a global function's pointer may be NULL, says the verifier */
		return PARSE_ERR_L2;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	p->len = frame_len(ctx);
	__u16 proto;
	__u32 off;
	if (PKT_L3_AT_DATA(ctx)) {
		proto = PKT_PROTO(ctx);
		off = 0;
		goto l3;
	}
	if (data + sizeof(struct ethhdr) > data_end)
		return PARSE_ERR_L2;
	/* One 16-bit load: struct ethhdr is packed, so eth->h_proto would be
	 * read a byte at a time; it is 2-aligned in any frame that starts at
	 * an even address, and x86 does not mind otherwise. */
	proto = bpf_ntohs(*(__be16 *)(data + offsetof(struct ethhdr, h_proto)));
	off = sizeof(struct ethhdr);
	if (proto == ETH_P_IP) {
		p->eth_proto = proto;
		p->l3_off = off;
		int res = parse_plain_ipv4(ctx, p, data, data_end);
		if (res >= 0)
			return res;
	}

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!is_vlan_proto(proto))
			break;
		struct vlan_hdr vh;
		if (pkt_load(ctx, off, &vh, sizeof(vh)))
			return PARSE_ERR_L2;
		proto = bpf_ntohs(vh.h_vlan_encapsulated_proto);
		off += sizeof(struct vlan_hdr);
		p->vlan_depth++;
	}
l3:
	p->eth_proto = proto;
	p->l3_off = off;

	if (proto == ETH_P_IP)
		return parse_ipv4(ctx, p);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(ctx, p);
	return PARSE_NOT_IP;
}

#endif /* XDPSCAN_PARSE_H */
