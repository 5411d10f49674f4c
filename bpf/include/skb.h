/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * skb.h: the part of struct __sk_buff (the context of TC programs) that
 * xdpscan's TC programs read, at the uapi's offsets, and TC's verdicts.
 */
#ifndef XDPSCAN_SKB_H
#define XDPSCAN_SKB_H

#include "kernel.h"

struct __sk_buff {
	__u32 len;           /* 0: the whole packet, frags included */
	__u32 pkt_type;      /* 4 */
	__u32 mark;          /* 8 */
	__u32 queue_mapping; /* 12: the TX queue on egress */
	__u32 protocol;      /* 16 */
	__u32 vlan_present;  /* 20 */
	__u32 vlan_tci;      /* 24 */
	__u32 vlan_proto;    /* 28 */
	__u32 priority;      /* 32 */
	__u32 ingress_ifindex; /* 36 */
	__u32 ifindex;       /* 40 */
	__u32 tc_index;      /* 44 */
	__u32 cb[5];         /* 48 */
	__u32 hash;          /* 68 */
	__u32 tc_classid;    /* 72 */
	__u32 data;          /* 76: the linear part's start */
	__u32 data_end;      /* 80: and end (filter.ContextSKB) */
};

/* TC_ACT_UNSPEC: "no opinion", the next program decides. tcx reads it as
 * TCX_NEXT (the next program in the chain), cls_bpf in direct-action mode
 * as "continue with the next filter": a capture never ends the chain. */
#define TC_ACT_UNSPEC (-1)

#endif /* XDPSCAN_SKB_H */
