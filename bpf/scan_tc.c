//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * scan_tc.c: the scan program for TC ingress (tcx, Linux 6.6, or a clsact
 * qdisc's cls_bpf filter before that), used when the interface already
 * has an XDP program: someone else's, a capture's, another scan's. tcx
 * chains any number of programs, so the scan runs after that one, on what
 * it passed to the stack.
 *
 *   xdpscan_scan_tc  scan_reply.h's code, compiled for struct __sk_buff:
 *                    a validated reply is consumed (TC_ACT_SHOT), anything
 *                    else goes on to the next program (TC_ACT_UNSPEC is
 *                    TCX_NEXT); --reset's RST leaves by a redirect to the
 *                    interface's egress
 *
 * The loader hands it the XDP program's maps (ring, counters, dedup table,
 * UDP echoes): one ring, one reader, one set of counters for the run.
 * Each scan checks its own cookie key, so scans chained on one interface
 * each take their own replies and pass the others on.
 *
 * At TC ingress the kernel has already moved an outer VLAN tag into the
 * skb's metadata (the frame starts with the inner headers), and the linear
 * area may end before the headers do: the parser's in-place fast path
 * reads what is linear, bpf_skb_load_bytes the rest (PKT_PAST_LINEAR).
 * After a generic XDP program with xdp.frags (someone else's: xdpscan's
 * capture loads without it in generic mode), the data starts at the IP
 * header instead (skbmac.h): the parser starts there, and
 * --reset sends no RST (no MAC header to turn around).
 */
#include "include/kernel.h"
#include "include/skb.h"
#include "include/bpf_helpers.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define PKT_CTX struct __sk_buff
#define PKT_LOAD(skb, off, dst, n) bpf_skb_load_bytes(skb, off, dst, n)
#define PKT_LEN(skb) ((skb)->len)
#define PKT_PAST_LINEAR(skb, p) parse_l4(skb, p)
/* The RST is cut to its length and made linear and writable in place;
 * tcpreply.h writes its checksums whole. */
#define PKT_RESIZE(skb, len, want)                                            \
	(((long)(want) != (long)(len) && bpf_skb_change_tail(skb, want, 0)) || \
	 bpf_skb_pull_data(skb, want))

#ifndef TC_ACT_SHOT
#define TC_ACT_SHOT 2
#endif
#define VERDICT_PASS TC_ACT_UNSPEC
#define VERDICT_DROP TC_ACT_SHOT
#define VERDICT_SEND_BACK(skb) bpf_redirect((skb)->ifindex, 0)
/* The outer tag is in the skb's metadata here, not in the frame. */
#define REPLY_TAGGED(skb) ((skb)->vlan_present)

#include "include/skbmac.h"
#define PKT_L3_AT_DATA(skb) tc_l3_at_data(skb)
#define PKT_PROTO(skb) bpf_ntohs((__u16)(skb)->protocol)

#include "include/scan_reply.h"

SEC("tc")
int xdpscan_scan_tc(struct __sk_buff *skb)
{
	return scan_reply(skb);
}
