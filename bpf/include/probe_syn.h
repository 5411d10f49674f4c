/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * probe_syn.h: the C validator of a TCP SYN probe; its Go twin is
 * probe.SYN (probe/template.go), which builds the SYN. Answers: a SYN-ACK
 * (open), a RST (closed), or an ICMP error quoting the SYN (filtered).
 *
 * Included by scan_reply.h after struct probe, the CHECK_* values and the cookie
 * helpers it uses.
 */
#ifndef XDPSCAN_PROBE_SYN_H
#define XDPSCAN_PROBE_SYN_H

/* syn_classify fills pr from a TCP reply sent by the target itself: 0 when
 * it is neither a SYN-ACK nor a RST to one of our ports. */
static __always_inline int syn_classify(const struct packet *p, struct probe *pr)
{
	if (!ours_port(p->dport) || !is_us(p->family, p->daddr))
		return 0;
	if ((p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == (TCP_FLAG_SYN | TCP_FLAG_ACK))
		pr->kind = REPLY_OPEN;
	else if (p->tcp_flags & TCP_FLAG_RST)
		pr->kind = REPLY_CLOSED;
	else
		return 0;
	direct_reply(p, pr, CHECK_TCP_ACK);
	return 1;
}

/* syn_classify_quote fills pr from an ICMP error quoting a TCP header
 * (pr's addresses, protocol and kind are already set). */
static __always_inline int syn_classify_quote(const struct packet *p, struct probe *pr)
{
	return quoted_reply(p, pr, CHECK_QUOTED_SEQ);
}

/* syn_validate checks a reply classified by syn_classify or
 * syn_classify_quote against the SYN's cookie: 1 when it holds, else 0.
 *
 * probe.SYN.Validator names it. Inlined: a BPF-to-BPF call cost
 * 3-8 ns per validated reply (BenchmarkScanProgram). */
static __always_inline int syn_validate(const struct packet *p, const struct probe *pr)
{
	__u64 h = probe_cookie(pr->family, pr->us, pr->target, IPPROTO_TCP, pr->local_port, pr->port);
	__u32 cookie = h;
	if (pr->check == CHECK_TCP_ACK)
		/* zmap's rule: some stacks answer a SYN with a RST that does
		 * not count the SYN in its acknowledgement number. */
		return p->tcp_ack - 1 == cookie || (pr->kind == REPLY_CLOSED && p->tcp_ack == cookie);
	/* The quoted sequence number and IP ID. */
	return pr->word == cookie && quoted_ip_id_ok(p, h);
}

#endif
