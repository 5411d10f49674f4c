//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * responder.c: the testbed's high-rate target. Attached to the target's
 * veth, it answers IPv4 TCP SYNs to the target range by a fixed rule, at XDP
 * speed with XDP_TX: SYN-ACK from an open port, RST-ACK from any other, and
 * nothing for a "filtered" address; the scanner's RSTs to the range end
 * here. The rule is the same as the kernel target's, so one ground truth
 * serves both (testbed.Config.State).
 *
 * Kernel floor: 5.18 (parse.h reads with bpf_xdp_load_bytes). The testbed attaches it in generic mode: on veth,
 * native XDP_TX reaches only a peer whose own native XDP program enabled
 * NAPI, which a scanner without XDP never has.
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"
#include "include/parse.h"
#include "include/counters.h"
#include "include/tcpreply.h"

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

SEC("xdp")
int xdpscan_responder(struct xdp_md *ctx)
{
	struct packet p = {};
	int res;
	struct counter_block *c = parse_counted(ctx, &p, &res);
	if (!c)
		return XDP_PASS;
	if (res != PARSE_L4 || p.family != 4 || p.l4_proto != IPPROTO_TCP || p.vlan_depth)
		return XDP_PASS;
	__be32 daddr;
	__builtin_memcpy(&daddr, p.daddr, 4);
	if ((daddr & range_mask) != range_addr)
		return XDP_PASS;
	/* A scanner's RST ending a handshake this responder answered: a host
	 * without that connection drops it after a socket lookup; so does this
	 * one, without the lookup (it was 5% of a max-rate scan's CPU). */
	if (p.tcp_flags & TCP_FLAG_RST) {
		count_in(c, COUNTER_DROPPED, 1);
		return XDP_DROP;
	}
	if ((p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return XDP_PASS;
	if ((bpf_ntohl(daddr) & 0xff) >= filtered_from) {
		count_in(c, COUNTER_DROPPED, 1);
		return XDP_DROP;
	}

	if (p.l4_off != sizeof(struct ethhdr) + sizeof(struct iphdr))
		return XDP_PASS; /* IPv4 options: not a probe this responder answers */
	struct tcphdr th;
	if (pkt_load(ctx, p.l4_off, &th, sizeof(th)))
		return XDP_PASS;
	__u32 their_seq = bpf_ntohl(th.seq);
	int rc;
	if (port_open(p.dport))
		/* Any fixed ISN will do: nobody completes these handshakes. */
		rc = tcp_reply(ctx, p.len, TCP_FLAG_SYN | TCP_FLAG_ACK, their_seq ^ 0x5a5a5a5a, their_seq + 1, 64240);
	else
		rc = tcp_reply(ctx, p.len, TCP_FLAG_RST | TCP_FLAG_ACK, 0, their_seq + 1, 0);
	if (rc)
		return XDP_PASS;

	count_in(c, COUNTER_TX, 1);
	return XDP_TX;
}
