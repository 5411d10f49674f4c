//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * responder.c: the testbed's high-rate target. Attached to the target's
 * veth, it answers IPv4 TCP SYNs to the target range by a fixed rule, at XDP
 * speed with XDP_TX: SYN-ACK from an open port, RST-ACK from any other, and
 * nothing for a "filtered" address. The rule is the same as the kernel
 * target's, so one ground truth serves both (testbed.Config.State).
 *
 * Kernel floor: 5.9. The testbed attaches it in generic mode: on veth,
 * native XDP_TX reaches only a peer whose own native XDP program enabled
 * NAPI, which a scanner without XDP never has.
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"
#include "include/parse.h"
#include "include/counters.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define MAX_OPEN_PORTS 16

volatile const __be32 range_addr = 0; /* network order */
volatile const __be32 range_mask = 0; /* network order */
/* Addresses whose last octet is >= this are silently dropped. */
volatile const __u8 filtered_from = 240;
volatile const __u16 open_ports[MAX_OPEN_PORTS] = {};
volatile const __u32 n_open_ports = 0;

static __always_inline int port_open(__u16 port)
{
#pragma unroll
	for (int i = 0; i < MAX_OPEN_PORTS; i++) {
		if (i < n_open_ports && open_ports[i] == port)
			return 1;
	}
	return 0;
}

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

SEC("xdp")
int xdpscan_responder(struct xdp_md *ctx)
{
	struct packet p = {};
	int res = parse_packet(ctx, &p);
	count_parse(&p, res);
	if (res != PARSE_L4 || p.family != 4 || p.l4_proto != IPPROTO_TCP || p.vlan_depth)
		return XDP_PASS;
	if ((p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN)
		return XDP_PASS;
	__be32 daddr;
	__builtin_memcpy(&daddr, p.daddr, 4);
	if ((daddr & range_mask) != range_addr)
		return XDP_PASS;
	if ((bpf_ntohl(daddr) & 0xff) >= filtered_from) {
		count(COUNTER_DROPPED, 1);
		return XDP_DROP;
	}

	/* The reply is a bare 54-byte frame: cut options and payload. */
	long delta = (long)(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr)) - (long)p.len;
	if (p.l4_off != sizeof(struct ethhdr) + sizeof(struct iphdr))
		return XDP_PASS; /* IPv4 options: not a probe this responder answers */
	if (delta && bpf_xdp_adjust_tail(ctx, (int)delta))
		return XDP_PASS;

	/* adjust_tail invalidated every packet pointer: derive them again with
	 * one plain bounds check (PKT_AT's NULL-or-pointer select would hand
	 * the verifier a scalar here). */
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr) > data_end)
		return XDP_ABORTED;
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
	__u32 their_seq = bpf_ntohl(th->seq);
	th->source = th->dest;
	th->dest = sport;
	th->ack_seq = bpf_htonl(their_seq + 1);
	th->doff_res = (sizeof(*th) / 4) << 4;
	th->urg_ptr = 0;
	if (port_open(bpf_ntohs(th->source))) {
		/* Any fixed ISN will do: nobody completes these handshakes. */
		th->seq = bpf_htonl(their_seq ^ 0x5a5a5a5a);
		th->flags = TCP_FLAG_SYN | TCP_FLAG_ACK;
		th->window = bpf_htons(64240);
	} else {
		th->seq = 0;
		th->flags = TCP_FLAG_RST | TCP_FLAG_ACK;
		th->window = 0;
	}
	th->check = 0;
	__u32 sum = csum_words((const __u16 *)&ip->saddr, 4, 0);
	sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*th));
	th->check = csum_fold(csum_words((const __u16 *)th, sizeof(*th) / 2, sum));

	count(COUNTER_TX, 1);
	return XDP_TX;
}
