//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * filterbench.c: `tcp port 443` written by hand, with libpcap's semantics
 * (IPv4: protocol 6, not a non-first fragment, either port; IPv6: next header
 * 6, or a fragment header followed by 6). The benchmark in filter/ compares
 * the translated filter's cost with this one under BPF_PROG_RUN.
 * XDP_PASS = match, XDP_DROP = no match.
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"

char __license[] SEC("license") = "Dual BSD/GPL";

static __always_inline int port_443(struct tcphdr *th, void *data_end)
{
	if ((void *)th + 4 > data_end)
		return XDP_DROP;
	return th->source == bpf_htons(443) || th->dest == bpf_htons(443) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int handwritten_tcp_port_443(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_OFFSET)))
			return XDP_DROP;
		return port_443((void *)ip + (ip->version_ihl & 0xf) * 4, data_end);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		if (ip6->nexthdr == IPPROTO_TCP)
			return port_443((void *)(ip6 + 1), data_end);
		if (ip6->nexthdr == IPPROTO_FRAGMENT) {
			__u8 *next = (void *)(ip6 + 1);
			if ((void *)(next + 1) > data_end || *next != IPPROTO_TCP)
				return XDP_DROP;
			return port_443((void *)(ip6 + 1) + 8, data_end);
		}
	}
	return XDP_DROP;
}
