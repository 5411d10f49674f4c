//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * scan.c: XDP program on the scanner's interface.
 *
 *   xdpscan_scan        validates, de-duplicates, reports and consumes
 *                       replies to the scan's probes (scan_reply.h, which
 *                       scan_tc.c runs at TC ingress instead when another
 *                       XDP program holds the interface); run by
 *                       BPF_PROG_RUN, it is also --tx xdp's transmitter
 *                       (send.h)
 *   xdpscan_send_relay  --tx-relay-cpu's cpumap program (send.h)
 *
 * Kernel floor: 5.18 (bpf_xdp_load_bytes and bpf_xdp_get_buff_len, which
 * keep it loadable without CAP_PERFMON: parse.h); ring buffer 5.8, bpf_link
 * XDP attachment 5.9.
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/send.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define VERDICT_PASS XDP_PASS
#define VERDICT_DROP XDP_DROP
#define VERDICT_SEND_BACK(ctx) XDP_TX
/* XDP sees the outer tag in the frame (vlan_depth), where a driver
 * without VLAN stripping leaves it. */
#define REPLY_TAGGED(ctx) 0
#include "include/scan_reply.h"

/* xdpscan_send_relay runs in the relay CPU's cpumap kthread on each frame
 * the transmitter redirected there (send.h). */
SEC("xdp/cpumap")
int xdpscan_send_relay(struct xdp_md *ctx)
{
	return send_relay_frame(ctx);
}

SEC("xdp")
int xdpscan_scan(struct xdp_md *ctx)
{
	if (is_send_run(ctx))
		return send_next(ctx);
	return scan_reply(ctx);
}
