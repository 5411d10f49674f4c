/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * probe_echo.h: the C validator of an ICMP/ICMPv6 echo request (--ping);
 * its Go twin is probe.Echo (probe/template_udp.go), which builds the
 * request. Answers: an echo reply (alive), or an ICMP error quoting the
 * request (filtered).
 *
 * Included by scan_reply.h after struct probe, the CHECK_* values and the cookie
 * helpers it uses.
 */
#ifndef XDPSCAN_PROBE_ECHO_H
#define XDPSCAN_PROBE_ECHO_H

/* echo_classify fills pr from an echo reply to us: 0 for any other ICMP
 * message. */
static __always_inline int echo_classify(const struct packet *p, struct probe *pr)
{
	if (!((p->family == 4 && p->icmp_type == ICMP_ECHOREPLY) ||
	      (p->family == 6 && p->icmp_type == ICMPV6_ECHO_REPLY)))
		return 0;
	__builtin_memcpy(pr->us, p->daddr, 16);
	__builtin_memcpy(pr->target, p->saddr, 16);
	pr->proto = p->l4_proto;
	pr->local_port = 0;
	pr->port = 0;
	pr->kind = REPLY_ALIVE;
	pr->check = CHECK_ECHO_ID;
	pr->word = p->icmp_rest;
	return 1;
}

/* echo_classify_quote fills pr from an ICMP error quoting an ICMP header
 * (pr's addresses, protocol and kind are already set): 0 unless the quote
 * is an echo request. */
static __always_inline int echo_classify_quote(const struct packet *p, struct probe *pr)
{
	/* Its first byte (the "source port" parse_quote read) is the type. */
	if ((p->quote_sport >> 8) != (p->family == 4 ? ICMP_ECHO : ICMPV6_ECHO_REQUEST))
		return 0;
	pr->local_port = 0;
	pr->port = 0;
	pr->check = CHECK_QUOTED_ECHO;
	pr->word = p->quote_l4_word;
	return 1;
}

/* echo_validate checks a reply classified by echo_classify or
 * echo_classify_quote against the request's cookie (its id:seq, and the IP
 * ID of a quote): 1 when it holds, else 0.
 * probe.Echo.Validator names it. Inlined: a BPF-to-BPF call cost
 * 3-8 ns per validated reply (BenchmarkScanProgram). */
static __always_inline int echo_validate(const struct packet *p, const struct probe *pr)
{
	__u64 h = probe_cookie(pr->family, pr->us, pr->target, pr->proto, 0, 0);
	__u32 cookie = h;
	if (pr->check == CHECK_ECHO_ID)
		return pr->word == cookie;
	return pr->word == cookie && quoted_ip_id_ok(p, h);
}

#endif
