/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters shared by xdpscan's XDP programs. Each program that
 * includes this header gets its own "counters" map; Go sums the CPUs.
 *
 * Invariants checked by the tests: packets == l2_errors + non_ip + ipv4 +
 * ipv6, and tcp == the sum of the five TCP flag classes.
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
	COUNTER_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, enum counter_idx);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(enum counter_idx idx, __u64 n)
{
	__u32 key = idx;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += n; /* per-CPU slot: no atomic needed */
}

/* TCP header flag bits (byte 13). */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

static __always_inline enum counter_idx tcp_flag_class(__u8 flags)
{
	if (flags & TCP_FLAG_RST)
		return COUNTER_TCP_RST;
	if (flags & TCP_FLAG_SYN)
		return flags & TCP_FLAG_ACK ? COUNTER_TCP_SYN_ACK : COUNTER_TCP_SYN;
	if (flags & TCP_FLAG_FIN)
		return COUNTER_TCP_FIN;
	return COUNTER_TCP_OTHER;
}

/* count_parse classifies one parsed frame into the protocol counters. */
static __always_inline void count_parse(const struct packet *p, int res)
{
	count(COUNTER_PACKETS, 1);
	count(COUNTER_BYTES, p->len);
	if (p->vlan_depth)
		count(COUNTER_VLAN, 1);

	if (res == PARSE_ERR_L2) {
		count(COUNTER_L2_ERRORS, 1);
		count(COUNTER_PARSE_ERRORS, 1);
		return;
	}
	if (res == PARSE_NOT_IP) {
		count(COUNTER_NON_IP, 1);
		return;
	}
	count(p->eth_proto == ETH_P_IP ? COUNTER_IPV4 : COUNTER_IPV6, 1);
	if (res == PARSE_ERR) {
		count(COUNTER_PARSE_ERRORS, 1);
		return;
	}
	if (p->fragment)
		count(COUNTER_FRAGMENTS, 1);
	if (res != PARSE_L4) {
		count(COUNTER_OTHER_L4, 1);
		return;
	}
	switch (p->l4_proto) {
	case IPPROTO_TCP:
		count(COUNTER_TCP, 1);
		count(tcp_flag_class(p->tcp_flags), 1);
		break;
	case IPPROTO_UDP:
		count(COUNTER_UDP, 1);
		break;
	case IPPROTO_ICMP:
		count(COUNTER_ICMP, 1);
		break;
	case IPPROTO_ICMPV6:
		count(COUNTER_ICMPV6, 1);
		break;
	}
	if (p->icmp_error && !p->quote_valid)
		count(COUNTER_BAD_QUOTES, 1);
}

#endif /* XDPSCAN_COUNTERS_H */
