/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * skbmac.h: where an skb's data starts, for TC ingress programs. Any TC
 * program that reads a frame at TC ingress after a generic XDP program
 * with xdp.frags (someone else's: xdpscan's capture loads without it in
 * generic mode) needs it: scan_tc.c parses from the network header then;
 * a capture would have to load the MAC header with
 * bpf_skb_load_bytes_relative(..., BPF_HDR_START_MAC) to write the frame
 * whole.
 */
#ifndef XDPSCAN_SKBMAC_H
#define XDPSCAN_SKBMAC_H

#include "kernel.h"
#include "skb.h"
#include "bpf_helpers.h"

#define BPF_HDR_START_MAC 0
#ifndef ETH_HLEN
#define ETH_HLEN 14 /* the MAC header such an skb's data lacks */
#endif

/* tc_l3_at_data says whether the skb's data starts at its network header
 * instead of its MAC header. tcx pushes the MAC header back (mac_len bytes)
 * before it runs a program at ingress, but after a generic XDP program
 * with xdp.frags support the kernel (6.18) hands over an skb copied for
 * XDP whose data starts at the IP header (as if its mac_len were 0; seen
 * on veth with a capture holding XDP generic, before capture loaded
 * without xdp.frags in generic mode), 14
 * bytes after the MAC header, and skb->len counts from there.
 * Usually the EtherType at data + 12 is the one the kernel read
 * (skb->protocol), and the first byte, a MAC's, tells it is not an IP
 * header either: no helper call. An EtherType that differs means the
 * data is not a MAC header (an 802.3 frame's length is not IP either);
 * one that matches with an IP version nibble first (an IPv4 source in
 * 8.0.0.0/16 seen from its header, or a MAC starting 0x4X or 0x6X) is
 * decided by comparing 8 bytes with those at the MAC header: the same
 * bytes when the data starts there. */
static __always_inline int tc_l3_at_data(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + sizeof(struct ethhdr) > data_end)
		return 0;
	if (*(__u16 *)(data + offsetof(struct ethhdr, h_proto)) != (__u16)skb->protocol)
		return 1;
	__u8 version = *(__u8 *)data >> 4;
	if (version != 4 && version != 6)
		return 0;
	__u64 mac;
	if (bpf_skb_load_bytes_relative(skb, 0, &mac, sizeof(mac), BPF_HDR_START_MAC))
		return 0;
	return *(__u64 *)data != mac;
}

#endif /* XDPSCAN_SKBMAC_H */
