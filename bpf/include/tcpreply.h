/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Turning a received TCP segment into a bare reply sent back with XDP_TX
 * (54 bytes over IPv4, 74 over IPv6): used by the testbed's responder
 * (SYN -> SYN-ACK or RST) and by the scan program's --reset (SYN-ACK -> RST,
 * so the target stops retransmitting).
 */
#ifndef XDPSCAN_TCPREPLY_H
#define XDPSCAN_TCPREPLY_H

#include "kernel.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"
#include "pktctx.h"

#define TCP_REPLY_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define TCP_REPLY6_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct tcphdr))

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sum of n 16-bit words in memory order; RFC 1071's sum is byte-order
 * independent when stored back the same way. */
static __always_inline __u32 csum_words(const __u16 *w, int n, __u32 sum)
{
#pragma unroll
	for (int i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

/* swap_macs turns the frame around at layer 2. */
static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
}

/* tcp_rewrite turns th around: ports swapped, options and payload gone, the
 * given flags, sequence and acknowledgement (host order) and window, and the
 * checksum over pseudo, the pseudo-header's sum. */
static __always_inline void tcp_rewrite(struct tcphdr *th, __u8 flags, __u32 seq, __u32 ack, __u16 window, __u32 pseudo)
{
	__be16 sport = th->source;
	th->source = th->dest;
	th->dest = sport;
	th->seq = bpf_htonl(seq);
	th->ack_seq = bpf_htonl(ack);
	th->doff_res = (sizeof(*th) / 4) << 4;
	th->flags = flags;
	th->window = bpf_htons(window);
	th->urg_ptr = 0;
	th->check = 0;
	pseudo += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*th));
	th->check = csum_fold(csum_words((const __u16 *)th, sizeof(*th) / 2, pseudo));
}

/* reply_frame cuts or grows the frame in ctx (len bytes) to want bytes,
 * turns it around at layer 2 and sets *data to its start, bounds-checked
 * for want bytes. Returns 0, or -1 when it cannot (the caller must then not
 * XDP_TX it). adjust_tail invalidates every packet pointer: they are
 * derived again here, with one bounds check. The result is a status and
 * not the pointer (NULL on failure) because clang cannot tell the checked
 * pointer is not NULL: each caller would pay a test it does not need. */
static __always_inline int reply_frame(PKT_CTX *ctx, __u32 len, __u32 want, void **data)
{
	if (PKT_RESIZE(ctx, len, want))
		return -1;
	*data = (void *)(long)ctx->data;
	if (*data + want > (void *)(long)ctx->data_end)
		return -1;
	swap_macs(*data);
	return 0;
}

/* tcp_reply rewrites the frame in ctx (untagged Ethernet, IPv4 without
 * options, TCP, frame length len) into its reply: addresses and ports
 * swapped, TCP options and payload cut, the given flags, sequence (host
 * order), acknowledgement and window, fresh checksums. Returns 0, or -1 when
 * the frame cannot be rewritten (the caller must then not XDP_TX it). */
static __always_inline int tcp_reply(PKT_CTX *ctx, __u32 len, __u8 flags, __u32 seq, __u32 ack, __u16 window)
{
	void *data;
	if (reply_frame(ctx, len, TCP_REPLY_LEN, &data))
		return -1;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *th = (void *)(ip + 1);

	__be32 saddr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = saddr;
	ip->version_ihl = 0x45;
	ip->tos = 0;
	ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*th));
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->check = 0;
	ip->check = csum_fold(csum_words((const __u16 *)ip, sizeof(*ip) / 2, 0));

	tcp_rewrite(th, flags, seq, ack, window, csum_words((const __u16 *)&ip->saddr, 4, 0));
	return 0;
}

/* tcp_reply6 is tcp_reply for IPv6 without extension headers. What the two
 * share is in reply_frame and tcp_rewrite; the rest rewrites a different
 * header. A swap macro for the addresses (and ports) would read shorter,
 * but clang 19 then orders the scan program's reply paths differently:
 * the code stays as the measured one. */
static __always_inline int tcp_reply6(PKT_CTX *ctx, __u32 len, __u8 flags, __u32 seq, __u32 ack, __u16 window)
{
	void *data;
	if (reply_frame(ctx, len, TCP_REPLY6_LEN, &data))
		return -1;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct tcphdr *th = (void *)(ip6 + 1);

	struct in6_addr saddr = ip6->saddr;
	ip6->saddr = ip6->daddr;
	ip6->daddr = saddr;
	ip6->version_prio = 6 << 4;
	ip6->flow_lbl[0] = 0;
	ip6->flow_lbl[1] = 0;
	ip6->flow_lbl[2] = 0;
	ip6->payload_len = bpf_htons(sizeof(*th));
	ip6->nexthdr = IPPROTO_TCP;
	ip6->hop_limit = 64;

	/* RFC 8200's pseudo-header: both addresses, the length as 32 bits and
	 * the next header (added by tcp_rewrite, as for IPv4). */
	tcp_rewrite(th, flags, seq, ack, window, csum_words((const __u16 *)&ip6->saddr, 16, 0));
	return 0;
}

#endif /* XDPSCAN_TCPREPLY_H */
