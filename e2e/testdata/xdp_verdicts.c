#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
/* One verdict per UDP port: 7777 dropped, 7778 sent back (XDP_TX), 7779
 * redirected out of the interface it came in on; the rest passes. */
SEC("xdp")
int verdicts(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return XDP_PASS;
	switch (bpf_ntohs(udp->dest)) {
	case 7777:
		return XDP_DROP;
	case 7778:
		return XDP_TX;
	case 7779:
		return bpf_redirect(ctx->ingress_ifindex, 0);
	}
	return XDP_PASS;
}
char _license[] SEC("license") = "GPL";
