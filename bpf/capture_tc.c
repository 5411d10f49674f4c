//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * capture_tc.c: the egress half of `capture -Q out|inout`. XDP sees only
 * received frames; a TC program on the interface's egress hook (tcx, Linux
 * 6.6, or a clsact qdisc's cls_bpf filter before that) sees every frame the
 * interface sends, as an AF_PACKET tap does.
 *
 *   xdpscan_capture_egress  counts the frame, runs the filter, counts a
 *                           match and, unless count-only, copies
 *                           min(snaplen, len, filter result) bytes into a
 *                           record of the capture program's ring (the
 *                           loader hands this program the XDP program's
 *                           ring map: one ring, one reader, one file)
 *   capture_egress_filter   the same translated filter as capture.c's
 *                           (filter.Splice with filter.ContextSKB)
 *
 * Records are capture.c's struct capture_hdr with dir = 1 (outbound), or 0
 * when loaded for the ingress hook (inbound = 1: see below).
 * Counters: this program's own counters map, so each direction is counted
 * apart (packets, bytes, matched, ring lost; on the ingress hook also by
 * protocol, as the XDP program counts).
 * Every packet continues (TC_ACT_UNSPEC): capture never disturbs traffic.
 */
#include "include/kernel.h"
#include "include/skb.h"
#include "include/bpf_helpers.h"

/* The shared parser (parse.h) reads the skb, as scan_tc.c's does: received
 * packets are counted by protocol as the XDP program counts them. */
#define PKT_CTX struct __sk_buff
#define PKT_LOAD(skb, off, dst, n) bpf_skb_load_bytes(skb, off, dst, n)
#define PKT_LEN(skb) ((skb)->len)
#define PKT_PAST_LINEAR(skb, p) parse_l4(skb, p)
#include "include/skbmac.h"
#define PKT_L3_AT_DATA(skb) tc_l3_at_data(skb)
#define PKT_PROTO(skb) bpf_ntohs((__u16)(skb)->protocol)
#include "include/counters.h"
#include "include/shape.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* Set when the program runs on the ingress hook instead: beside an XDP
 * program someone else attached, after it (it sees what that program
 * passed on). */
volatile const __u8 inbound = 0;
/* Set when the filter keeps every packet whole (no filter expression):
 * then a received frame whose data starts at the network header (after a
 * generic XDP program with xdp.frags: skbmac.h) is written all the same,
 * its MAC header read from where the skb keeps it. The translated filter
 * reads a frame from its MAC header, so with an expression such a frame
 * is counted (COUNTER_NO_MAC) and not written. */
volatile const __u8 filter_all = 0;

#define CAPTURE_CTX struct __sk_buff
#define CAPTURE_LOAD(skb, to, n, mac) tc_load(skb, to, n, mac)
#define CAPTURE_META(skb, h)                                                  \
	do {                                                                  \
		(h)->ifindex = (skb)->ifindex;                                \
		(h)->rx_queue = (skb)->queue_mapping;                         \
		(h)->dir = inbound ? 0 : 1;                                   \
	} while (0)
#define MAX_CAPTURE 262144
#define CAPTURE_CLASSES(X)                                                    \
	X(64) X(96) X(128) X(192) X(256) X(384) X(512) X(768) X(1024)         \
	X(1536) X(2048) X(3072) X(4096) X(6144) X(9216) X(12288) X(16384)    \
	X(24576) X(32768) X(49152) X(65536) X(98304) X(131072) X(196608)      \
	X(262144)

/* mac_load copies n bytes at off of the frame's MAC header, from where
 * the skb keeps it: for a frame whose data starts at the network header
 * (mac = ETH_HLEN: skbmac.h). */
static __always_inline long mac_load(struct __sk_buff *skb, __u32 off, __u8 *to, __u32 n)
{
	return bpf_skb_load_bytes_relative(skb, off, to, n, BPF_HDR_START_MAC);
}

/* tc_load copies the frame's first n bytes to `to`, with an outer VLAN
 * tag the skb holds in metadata (skb_vlan_untag on receive, tx-vlan
 * offload on send) back in place after the MAC addresses, as libpcap
 * writes it from PACKET_AUXDATA: n then counts the tag's 4 bytes. With
 * mac (ETH_HLEN), the skb's data starts at the network header and the MAC
 * header comes from where the skb keeps it, as an AF_PACKET socket reads
 * it. The splits are constants: the verifier bounds each copy by them. */
static __always_inline long tc_load(struct __sk_buff *skb, __u8 *to, __u64 n, __u32 mac)
{
	long err;
	if (!skb->vlan_present) {
		if (!mac)
			return bpf_skb_load_bytes(skb, 0, to, n);
		if (n <= ETH_HLEN)
			return mac_load(skb, 0, to, n);
		if ((err = mac_load(skb, 0, to, ETH_HLEN)))
			return err;
		return bpf_skb_load_bytes(skb, 0, to + ETH_HLEN, n - ETH_HLEN);
	}
	if (n < 16)
		return -1;
	err = mac ? mac_load(skb, 0, to, 12) : bpf_skb_load_bytes(skb, 0, to, 12);
	if (err)
		return err;
	*(__be16 *)(to + 12) = (__be16)skb->vlan_proto;
	*(__be16 *)(to + 14) = bpf_htons((__u16)skb->vlan_tci);
	if (n == 16)
		return 0;
	if (!mac)
		return bpf_skb_load_bytes(skb, 12, to + 16, n - 16);
	if (n < 18)
		return -1;
	if ((err = mac_load(skb, 12, to + 16, 2)) || n == 18)
		return err;
	return bpf_skb_load_bytes(skb, 0, to + 18, n - 18);
}
#include "include/capture_rec.h"

static __always_inline int placeholder_keep(struct __sk_buff *skb)
{
	int keep = MAX_CAPTURE;
	asm volatile("" : "+r"(keep) : "r"(skb));
	return keep;
}

/* As capture.c's capture_filter: 0 for no match, else the bytes to keep;
 * the loader puts the translated filter in place of this placeholder. */
__attribute__((noinline)) int capture_egress_filter(struct __sk_buff *skb)
{
	return placeholder_keep(skb);
}

/* count_received counts a received packet as the XDP program does, by
 * protocol (count_frame: the common shapes inline, the rest through the
 * shared parser), and its bytes with the tag (tag: 4 when the skb holds
 * one in metadata). The frame then counts as tagged, once: an inner tag
 * still in the frame (skb->protocol a VLAN type) was counted already. */
static __always_inline struct counter_block *count_received(struct __sk_buff *skb, __u32 tag)
{
	struct counter_block *c = counters_here();
	if (!c)
		return 0;
	count_frame(skb, c);
	if (tag) {
		count_in(c, COUNTER_BYTES, tag);
		if (skb->protocol != bpf_htons(ETH_P_8021Q) && skb->protocol != bpf_htons(ETH_P_8021AD))
			count_in(c, COUNTER_VLAN, 1);
	}
	return c;
}

SEC("tc")
int xdpscan_capture_egress(struct __sk_buff *skb)
{
	/* A tag in metadata is in the frame tcpdump writes: 4 bytes more,
	 * which what the filter keeps (of the packet without the tag) does
	 * not count. */
	__u32 tag = skb->vlan_present ? 4 : 0;
	__u32 len = skb->len + tag;
	__u32 mac = 0;
	struct counter_block *c;
	if (inbound) {
		c = count_received(skb, tag);
		if (!c)
			return TC_ACT_UNSPEC;
		if (PKT_L3_AT_DATA(skb)) {
			count_in(c, COUNTER_BYTES, ETH_HLEN);
			if (!filter_all) {
				count_in(c, COUNTER_NO_MAC, 1);
				return TC_ACT_UNSPEC;
			}
			mac = ETH_HLEN;
			len += ETH_HLEN;
		}
	} else {
		c = counters_here();
		if (!c)
			return TC_ACT_UNSPEC;
		count_in(c, COUNTER_PACKETS, 1);
		count_in(c, COUNTER_BYTES, len);
	}
	__u32 keep = mac ? MAX_CAPTURE : capture_egress_filter(skb);
	if (!keep)
		return TC_ACT_UNSPEC;
	count_in(c, COUNTER_MATCHED, 1);
	if (count_only)
		return TC_ACT_UNSPEC;
	if (keep < len - tag)
		keep += tag;
	capture_copy(skb, c, len, keep, mac);
	return TC_ACT_UNSPEC;
}
