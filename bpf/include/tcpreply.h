/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Turning a received IPv4 TCP segment into a bare 54-byte reply sent back
 * with XDP_TX: used by the testbed's responder (SYN -> SYN-ACK or RST) and by
 * the scan program's --reset (SYN-ACK -> RST, so the target stops
 * retransmitting).
 */
#ifndef XDPSCAN_TCPREPLY_H
#define XDPSCAN_TCPREPLY_H

#include "kernel.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

#define TCP_REPLY_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr))

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

/* tcp_reply rewrites the frame in ctx (untagged Ethernet, IPv4 without
 * options, TCP, frame length len) into its reply: addresses and ports
 * swapped, TCP options and payload cut, the given flags, sequence (host
 * order), acknowledgement and window, fresh checksums. Returns 0, or -1 when
 * the frame cannot be rewritten (the caller must then not XDP_TX it). */
static __always_inline int tcp_reply(struct xdp_md *ctx, __u32 len, __u8 flags, __u32 seq, __u32 ack, __u16 window)
{
	long delta = (long)TCP_REPLY_LEN - (long)len;
	if (delta && bpf_xdp_adjust_tail(ctx, (int)delta))
		return -1;

	/* adjust_tail invalidated every packet pointer: derive them again with
	 * one plain bounds check (PKT_AT's NULL-or-pointer select would hand
	 * the verifier a scalar here). */
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + TCP_REPLY_LEN > data_end)
		return -1;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *th = data + sizeof(*eth) + sizeof(*ip);

	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

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
	__u32 sum = csum_words((const __u16 *)&ip->saddr, 4, 0);
	sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*th));
	th->check = csum_fold(csum_words((const __u16 *)th, sizeof(*th) / 2, sum));
	return 0;
}

#endif /* XDPSCAN_TCPREPLY_H */
