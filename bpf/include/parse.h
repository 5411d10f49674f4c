/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing shared by xdpscan's XDP programs.
 *
 * The parser records byte offsets, not pointers: every consumer turns an
 * offset back into a pointer with PKT_AT(), which bounds-checks against
 * data_end. Offsets are clamped to PARSE_MAX_OFF so the verifier can prove
 * every derived pointer stays in range, including across the IPv6
 * extension-header walk.
 */
#ifndef XDPSCAN_PARSE_H
#define XDPSCAN_PARSE_H

#include "kernel.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

#define PARSE_MAX_OFF 1500
#define VLAN_MAX_DEPTH 2
#define IPV6_MAX_EXT_HEADERS 6

/* PKT_AT yields a pointer to a T at offset off, or NULL when the T would
 * extend past data_end. The mask bounds an offset the verifier knows nothing
 * of (one read back from a struct packet filled by parse_packet, a global
 * function) so that offset + sizeof(T) stays under its 64 KiB limit for
 * packet pointers; every offset the parser makes is far below it
 * (PARSE_MAX_OFF), and an XDP frame's linear data is at most a page. */
#define PKT_OFF_MASK 0x3fff
#define PKT_AT(data, data_end, off, T)                                        \
	({                                                                    \
		T *__p = (T *)((void *)(data) + ((off) & PKT_OFF_MASK));      \
		((void *)(__p + 1) > (void *)(data_end)) ? (T *)0 : __p;      \
	})

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
	/* Aligned so an address is copied in words, not bytes. */
	__u8 saddr[16] __attribute__((aligned(4))); /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16] __attribute__((aligned(4)));
	/* ICMP/ICMPv6 error quotes: the header of the packet that caused it. */
	__u8 quote_valid;  /* inner IP and 8 bytes of inner L4 were present */
	__u8 quote_proto;
	__u16 quote_sport; /* host order */
	__u16 quote_dport;
	__u16 quote_l4_off;
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

/* parse_quote reads the IP header and first 8 L4 bytes quoted by an ICMP or
 * ICMPv6 error starting at off. RFC 792 and RFC 4443 guarantee at least that
 * much; anything shorter leaves quote_valid = 0. Quoted IPv6 extension
 * headers are not walked: scan probes never carry any. */
static __always_inline void parse_quote(struct packet *p, void *data,
					void *data_end, __u32 off)
{
	if (p->family == 4) {
		struct iphdr *ip = PKT_AT(data, data_end, off, struct iphdr);
		if (!ip || (ip->version_ihl >> 4) != 4)
			return;
		__u32 ihl = (ip->version_ihl & 0x0f) * 4;
		if (ihl < sizeof(struct iphdr))
			return;
		off += ihl;
		if (off > PARSE_MAX_OFF || !within_ip(p, off, sizeof(struct udphdr)))
			return;
		struct udphdr *l4 = PKT_AT(data, data_end, off, struct udphdr);
		if (!l4)
			return;
		p->quote_proto = ip->protocol;
		copy_addr4(p->quote_saddr, ip->saddr);
		copy_addr4(p->quote_daddr, ip->daddr);
		p->quote_sport = bpf_ntohs(l4->source);
		p->quote_dport = bpf_ntohs(l4->dest);
		p->quote_l4_off = off;
		p->quote_valid = 1;
		return;
	}
	struct ipv6hdr *ip6 = PKT_AT(data, data_end, off, struct ipv6hdr);
	if (!ip6 || (ip6->version_prio >> 4) != 6)
		return;
	off += sizeof(struct ipv6hdr);
	if (!within_ip(p, off, sizeof(struct udphdr)))
		return;
	struct udphdr *l4 = PKT_AT(data, data_end, off, struct udphdr);
	if (!l4)
		return;
	p->quote_proto = ip6->nexthdr;
	copy_addr6(p->quote_saddr, &ip6->saddr);
	copy_addr6(p->quote_daddr, &ip6->daddr);
	p->quote_sport = bpf_ntohs(l4->source);
	p->quote_dport = bpf_ntohs(l4->dest);
	p->quote_l4_off = off;
	p->quote_valid = 1;
}

/* parse_l4 reads the transport header at p->l4_off. */
static __always_inline int parse_l4(struct packet *p, void *data, void *data_end)
{
	__u32 off = p->l4_off;

	switch (p->l4_proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = PKT_AT(data, data_end, off, struct tcphdr);
		if (!th || !within_ip(p, off, sizeof(*th)))
			return PARSE_ERR;
		__u32 doff = (th->doff_res >> 4) * 4;
		if (doff < sizeof(struct tcphdr) || !within_ip(p, off, doff))
			return PARSE_ERR;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcp_flags = th->flags;
		return PARSE_L4;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = PKT_AT(data, data_end, off, struct udphdr);
		if (!uh || !within_ip(p, off, sizeof(*uh)))
			return PARSE_ERR;
		if (bpf_ntohs(uh->len) < sizeof(struct udphdr))
			return PARSE_ERR;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		return PARSE_L4;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		if ((p->l4_proto == IPPROTO_ICMP) != (p->family == 4))
			return PARSE_L3; /* ICMPv4 in IPv6 or the reverse: not ours to read */
		struct icmphdr *ih = PKT_AT(data, data_end, off, struct icmphdr);
		if (!ih || !within_ip(p, off, sizeof(*ih)))
			return PARSE_ERR;
		p->icmp_type = ih->type;
		p->icmp_code = ih->code;
		p->icmp_error = is_icmp_error(p->family, ih->type);
		if (p->icmp_error)
			parse_quote(p, data, data_end, off + sizeof(struct icmphdr));
		return PARSE_L4;
	}
	default:
		return PARSE_L3;
	}
}

static __always_inline int parse_ipv4(struct packet *p, void *data, void *data_end)
{
	struct iphdr *ip = PKT_AT(data, data_end, p->l3_off, struct iphdr);
	if (!ip)
		return PARSE_ERR;
	__u32 ihl = (ip->version_ihl & 0x0f) * 4;
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(struct iphdr))
		return PARSE_ERR;
	__u32 tot_len = bpf_ntohs(ip->tot_len);
	/* The frame may carry Ethernet padding past tot_len, never less. */
	if (tot_len < ihl || (void *)ip + tot_len > data_end)
		return PARSE_ERR;

	p->family = 4;
	p->ip_end = p->l3_off + tot_len;
	p->l4_proto = ip->protocol;
	p->ttl = ip->ttl;
	p->ip_id = bpf_ntohs(ip->id);
	copy_addr4(p->saddr, ip->saddr);
	copy_addr4(p->daddr, ip->daddr);

	__u16 frag = bpf_ntohs(ip->frag_off);
	if (frag & (IP_MF | IP_OFFSET))
		p->fragment = 1;
	if (frag & IP_OFFSET)
		return PARSE_L3; /* only the first fragment carries the L4 header */

	p->l4_off = p->l3_off + ihl;
	return parse_l4(p, data, data_end);
}

static __always_inline int parse_ipv6(struct packet *p, void *data, void *data_end)
{
	struct ipv6hdr *ip6 = PKT_AT(data, data_end, p->l3_off, struct ipv6hdr);
	if (!ip6)
		return PARSE_ERR;
	if ((ip6->version_prio >> 4) != 6)
		return PARSE_ERR;
	__u32 off = p->l3_off + sizeof(struct ipv6hdr);
	__u32 payload_len = bpf_ntohs(ip6->payload_len);
	if ((void *)ip6 + sizeof(*ip6) + payload_len > data_end)
		return PARSE_ERR;
	p->ip_end = off + payload_len;

	p->family = 6;
	p->ttl = ip6->hop_limit;
	copy_addr6(p->saddr, &ip6->saddr);
	copy_addr6(p->daddr, &ip6->daddr);
	__u8 next = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		if (off > PARSE_MAX_OFF)
			return PARSE_ERR;
		switch (next) {
		case IPPROTO_HOPOPTS:
			/* RFC 8200 4.1: only right after the IPv6 header; the
			 * kernel rejects it anywhere else, and so do we. */
			if (i > 0)
				return PARSE_ERR;
			/* fall through */
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS: {
			struct ipv6_opt_hdr *h = PKT_AT(data, data_end, off, struct ipv6_opt_hdr);
			if (!h)
				return PARSE_ERR;
			next = h->nexthdr;
			off += ((__u32)h->hdrlen + 1) * 8;
			break;
		}
		case IPPROTO_AH: {
			struct ipv6_opt_hdr *h = PKT_AT(data, data_end, off, struct ipv6_opt_hdr);
			if (!h)
				return PARSE_ERR;
			next = h->nexthdr;
			off += ((__u32)h->hdrlen + 2) * 4;
			break;
		}
		case IPPROTO_FRAGMENT: {
			struct frag_hdr *h = PKT_AT(data, data_end, off, struct frag_hdr);
			if (!h)
				return PARSE_ERR;
			p->fragment = 1;
			p->l4_proto = h->nexthdr;
			if (bpf_ntohs(h->frag_off) & ~0x7)
				return PARSE_L3; /* non-first fragment */
			next = h->nexthdr;
			off += sizeof(struct frag_hdr);
			break;
		}
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
	return parse_l4(p, data, data_end);
}

/* parse_packet fills p, which the caller zeroed, from the frame in ctx.
 *
 * A global function (Linux 5.6): the verifier checks it once, on its own,
 * instead of once for every path that reaches each of its callers' later
 * branches; loading a program then costs a fraction of the verifier time
 * (the largest fixed cost of a short scan). Its callers see p's fields as
 * unknown numbers, which the offsets' clamping (PKT_AT) was made for. */
__attribute__((noinline)) int parse_packet(struct xdp_md *ctx, struct packet *p)
{
	if (!p) /* a global function's pointer may be NULL, says the verifier */
		return PARSE_ERR_L2;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	p->len = data_end - data;
	struct ethhdr *eth = PKT_AT(data, data_end, 0, struct ethhdr);
	if (!eth)
		return PARSE_ERR_L2;
	/* One 16-bit load: struct ethhdr is packed, so eth->h_proto would be
	 * read a byte at a time; it is 2-aligned in any frame that starts at
	 * an even address, and x86 does not mind otherwise. */
	__u16 proto = bpf_ntohs(*(__be16 *)((void *)eth + offsetof(struct ethhdr, h_proto)));
	__u32 off = sizeof(struct ethhdr);

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		struct vlan_hdr *vh = PKT_AT(data, data_end, off, struct vlan_hdr);
		if (!vh)
			return PARSE_ERR_L2;
		proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		off += sizeof(struct vlan_hdr);
		p->vlan_depth++;
	}
	p->eth_proto = proto;
	p->l3_off = off;

	if (proto == ETH_P_IP)
		return parse_ipv4(p, data, data_end);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(p, data, data_end);
	return PARSE_NOT_IP;
}

#endif /* XDPSCAN_PARSE_H */
