/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pktctx.h: the context the shared parser (parse.h), the reply validators
 * (probe_*.h) and the reply builder (tcpreply.h) read and write, so that
 * the same code compiles for XDP and for TC.
 *
 * XDP's by default. A program for TC (scan_tc.c) defines these first:
 *   PKT_CTX                      the context type
 *   PKT_LOAD(ctx, off, dst, n)   copies n bytes at off to a stack object,
 *                                past the first buffer too
 *   PKT_LEN(ctx)                 the whole frame's length
 *   PKT_PAST_LINEAR(ctx, p)      what the in-place fast path returns when a
 *                                header runs past the directly readable
 *                                part: XDP's frame (without xdp.frags) is
 *                                all of it, so a malformed frame; an skb's
 *                                linear area may stop short of the headers,
 *                                which are then read by loads (parse_l4)
 *   PKT_RESIZE(ctx, len, want)   makes the frame want bytes long and its
 *                                first want bytes writable in place: 0, or
 *                                an error
 *   PKT_L3_AT_DATA(ctx)          the context's data starts at the network
 *                                header, with no link-layer header in view
 *                                (never for XDP); PKT_PROTO(ctx) is then
 *                                its EtherType, host order
 */
#ifndef XDPSCAN_PKTCTX_H
#define XDPSCAN_PKTCTX_H

#include "kernel.h"
#include "bpf_helpers.h"

#ifndef PKT_CTX
#define PKT_CTX struct xdp_md
#define PKT_LOAD(ctx, off, dst, n) bpf_xdp_load_bytes(ctx, off, dst, n)
#define PKT_LEN(ctx) bpf_xdp_get_buff_len(ctx)
#define PKT_PAST_LINEAR(ctx, p) PARSE_ERR
#define PKT_RESIZE(ctx, len, want)                                            \
	((long)(want) != (long)(len) && bpf_xdp_adjust_tail(ctx, (int)((long)(want) - (long)(len))))
#define PKT_L3_AT_DATA(ctx) 0
#define PKT_PROTO(ctx) 0
#endif

#endif /* XDPSCAN_PKTCTX_H */
