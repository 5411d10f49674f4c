/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * probe_udp.h: the C validator of a UDP probe; its Go twin is probe.UDP
 * (probe/template_udp.go), which builds the probe and its confirming retry
 * (--confirm). Answers: a datagram from the probed port (open; DNS, NTP and
 * SNMP answers must also echo the request's cookie bits), ICMP port
 * unreachable (closed), or another ICMP error quoting the probe (filtered).
 *
 * Included by scan_reply.h after struct probe, the CHECK_* values, the udp_echoes
 * map and the cookie helpers it uses.
 */
#ifndef XDPSCAN_PROBE_UDP_H
#define XDPSCAN_PROBE_UDP_H

/* udp_sport is the source port of the UDP probe with this cookie:
 * engine.udpSourcePort's twin. */
static __always_inline __u16 udp_sport(__u32 cookie)
{
	__u32 n = (__u32)sport_hi - sport_lo + 1;
	return sport_lo + cookie % n;
}

/* udp_confirm_sport is the source port of a UDP probe's confirming retry
 * with hash h: never the probe's own (sport0), so that even an answer that
 * echoes nothing tells which of the two it answers (probe.UDP.FillConfirm). */
static __always_inline __u16 udp_confirm_sport(__u64 h, __u16 sport0)
{
	__u16 s = udp_sport(h);
	if (s != sport0)
		return s;
	return s == sport_hi ? sport_lo : s + 1;
}

/* The cookie's shares a UDP payload echoes (probe/cookie.go names the same). */
static __always_inline __u16 dns_id_of(__u64 h) { return h >> 48; }
static __always_inline __u32 dns_case_of(__u64 h) { return ((__u32)h >> 8) & 0x7ff; }
static __always_inline __u32 snmp_id_of(__u64 h) { return ((__u32)(h >> 32) & 0x3fffffff) | 0x40000000; }

/* dns_letter_off is where letter i of "version.bind" lies in our query's
 * payload (and in the question an answer copies): 13-19, then 21-24. */
static __always_inline __u32 dns_letter_off(int i) { return i < 7 ? 13 + i : 14 + i; }

#define DNS_NAME_OFF 12
#define DNS_NAME_LEN 14 /* \7version\4bind\0 */

/* dns_ok: the answer's transaction ID, and its question name with our
 * letter case (resolvers copy the question as asked; 0x20 bits, as in
 * draft-vixie-dnsext-dns0x20). */
static __always_inline int dns_ok(PKT_CTX *ctx, const struct packet *p, __u32 pay, __u64 h)
{
	__u8 b[DNS_NAME_OFF + DNS_NAME_LEN];
	if (!within_ip(p, pay, sizeof(b)) || pkt_load(ctx, pay, b, sizeof(b)))
		return 0;
	if (((__u16)b[0] << 8 | b[1]) != dns_id_of(h))
		return 0;
	__u32 cs = dns_case_of(h);
#pragma unroll
	for (int i = 0; i < 11; i++)
		if (((b[dns_letter_off(i)] >> 5) & 1) != ((cs >> i) & 1))
			return 0;
	return 1;
}

/* snmp_ok finds the request-id of an SNMP response: SEQUENCE, version,
 * community, PDU, then INTEGER of 4 bytes (our request-id's top byte is
 * 0x40-0x7f, so BER always takes 4). Lengths may be short or long form. */
/* ber_skip_header moves *off past a BER tag and length whose first length
 * byte is len0 (short form, or long form in 1 or 2 bytes): 0, or -1 for
 * a length form an SNMP agent does not send. */
static __always_inline int ber_skip_header(__u32 *off, __u8 len0)
{
	if (len0 < 0x80)
		*off += 2;
	else if (len0 == 0x81 || len0 == 0x82)
		*off += 2 + (len0 & 3);
	else
		return -1;
	return 0;
}

static __always_inline int snmp_ok(PKT_CTX *ctx, const struct packet *p, __u32 pay, __u64 h)
{
	__u8 b[2];
	__u32 off = pay;
	if (pkt_load(ctx, off, b, 2) || b[0] != 0x30 || ber_skip_header(&off, b[1]))
		return 0;
	__u8 v[3];
	if (pkt_load(ctx, off, v, 3) || v[0] != 0x02 || v[1] != 0x01)
		return 0;
	off += 3;
	if (pkt_load(ctx, off, b, 2) || b[0] != 0x04 || b[1] >= 0x80)
		return 0;
	off += 2 + b[1];
	if (pkt_load(ctx, off, b, 2) || b[0] != 0xa2 || ber_skip_header(&off, b[1]))
		return 0;
	__u8 id[6];
	if (off > PARSE_MAX_OFF || !within_ip(p, off, 6) || pkt_load(ctx, off, id, 6) || id[0] != 0x02 || id[1] != 0x04)
		return 0;
	__u32 rid = (__u32)id[2] << 24 | (__u32)id[3] << 16 | (__u32)id[4] << 8 | id[5];
	return rid == snmp_id_of(h);
}

/* udp_echo_ok checks what a known service echoes from our request. */
static __always_inline int udp_echo_ok(PKT_CTX *ctx, const struct packet *p, __u64 h)
{
	__u16 port = p->sport;
	struct udp_echo *e = bpf_map_lookup_elem(&udp_echoes, &port);
	if (!e)
		return 1; /* no echoed field: the source port carries the cookie alone */
	__u32 pay = p->l4_off + sizeof(struct udphdr);
	switch (e->kind) {
	case ECHO_DNS:
		return dns_ok(ctx, p, pay, h);
	case ECHO_NTP: {
		__u8 ts[8];
		if (!within_ip(p, pay + 24, 8) || pkt_load(ctx, pay + 24, ts, 8))
			return 0;
		return load_be64(ts) == h;
	}
	case ECHO_SNMP:
		return snmp_ok(ctx, p, pay, h);
	}
	return 1; /* a payload whose answers echo nothing (SSDP) */
}

/* udp_payload_sum is the ones-complement sum of the payload of our UDP
 * probe to port with cookie h, and sets *len to its length: what
 * probe.UDP.Fill writes. */
static __always_inline __u32 udp_payload_sum(__u16 port, __u64 h, __u32 *len)
{
	struct udp_echo *e = bpf_map_lookup_elem(&udp_echoes, &port);
	*len = 0;
	if (!e)
		return 0; /* the empty payload */
	*len = e->len;
	__u32 sum = e->sum;
	switch (e->kind) {
	case ECHO_DNS: {
		sum += dns_id_of(h); /* bytes 0-1 */
		__u32 cs = dns_case_of(h);
#pragma unroll
		for (int i = 0; i < 11; i++)
			if ((cs >> i) & 1)
				sum += (dns_letter_off(i) & 1) ? 0x20 : 0x2000;
		break;
	}
	case ECHO_NTP: /* transmit timestamp, bytes 40-47 */
		sum += (h >> 48) + ((h >> 32) & 0xffff) + ((h >> 16) & 0xffff) + (h & 0xffff);
		break;
	case ECHO_SNMP: { /* request-id, bytes 17-20: an odd offset */
		__u32 rid = snmp_id_of(h);
		sum += (rid >> 24) + ((rid >> 8) & 0xffff) + ((rid & 0xff) << 8);
		break;
	}
	}
	return sum;
}

static __always_inline __u32 sum_words(const __u8 *a, int n)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 16; i += 2)
		if (i < n)
			s += (__u32)a[i] << 8 | a[i + 1];
	return s;
}

/* udp_quote_ok checks the UDP length and checksum an ICMP error quotes
 * (bytes 4-7 of our probe's UDP header) against the probe we sent. */
static __always_inline int udp_quote_ok(const struct probe *pr, __u32 word, __u64 h, __u16 sport)
{
	__u32 plen;
	__u32 sum = udp_payload_sum(pr->port, h, &plen);
	__u32 ulen = 8 + plen;
	if ((word >> 16) != ulen)
		return 0;
	int n = pr->family == 4 ? 4 : 16;
	sum += sum_words(pr->us, n) + sum_words(pr->target, n);
	sum += IPPROTO_UDP + ulen + sport + pr->port + ulen;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	__u16 csum = ~sum & 0xffff;
	if (csum == 0)
		csum = 0xffff;
	return (word & 0xffff) == csum;
}

/* udp_check checks a UDP answer or a quote of a UDP probe against hash h. */
static __always_inline int udp_check(PKT_CTX *ctx, const struct packet *p, const struct probe *pr, __u64 h,
				     __u16 sport)
{
	if (pr->local_port != sport)
		return 0;
	if (pr->check == CHECK_UDP)
		return udp_echo_ok(ctx, p, h);
	return quoted_ip_id_ok(p, h) && udp_quote_ok(pr, pr->word, h, pr->local_port);
}

/* udp_classify fills pr from a UDP datagram sent by the target itself: 0
 * when it is not to one of our ports. */
static __always_inline int udp_classify(const struct packet *p, struct probe *pr)
{
	if (!ours_port(p->dport) || !is_us(p->family, p->daddr))
		return 0;
	pr->kind = REPLY_OPEN;
	direct_reply(p, pr, CHECK_UDP);
	return 1;
}

/* udp_classify_quote fills pr from an ICMP error quoting a UDP header
 * (pr's addresses, protocol and kind are already set). */
static __always_inline int udp_classify_quote(const struct packet *p, struct probe *pr)
{
	if (!quoted_reply(p, pr, CHECK_QUOTED_UDP))
		return 0;
	/* RFC 1122: port unreachable is the host saying nobody listens. */
	if ((p->family == 4 && p->icmp_type == ICMP_DEST_UNREACH && p->icmp_code == 3) ||
	    (p->family == 6 && p->icmp_type == ICMPV6_DEST_UNREACH && p->icmp_code == 4))
		pr->kind = REPLY_CLOSED;
	return 1;
}

/* udp_validate checks a reply classified by udp_classify or
 * udp_classify_quote against the probe's cookie: 0 when it fails, 1 for an
 * answer to the probe, 2 for one to its confirming retry.
 * probe.UDP.Validator names it. Inlined: a BPF-to-BPF call cost
 * 3-8 ns per validated reply (BenchmarkScanProgram). */
static __always_inline int udp_validate(PKT_CTX *ctx, const struct packet *p, const struct probe *pr)
{
	__u64 h = probe_cookie(pr->family, pr->us, pr->target, IPPROTO_UDP, 0, pr->port);
	/* One copy of the check for both cookies, not two inlined: the
	 * stack would outgrow 512 bytes. */
	int rounds = udp_confirm ? 2 : 1;
	__u16 sport0 = udp_sport(h), sport = sport0;
#pragma clang loop unroll(disable)
	for (int salt = 0; salt < rounds; salt++) {
		if (salt) {
			h = probe_cookie(pr->family, pr->us, pr->target, IPPROTO_UDP, 1, pr->port);
			sport = udp_confirm_sport(h, sport0);
		}
		if (udp_check(ctx, p, pr, h, sport))
			return salt + 1;
	}
	return 0;
}

#endif
