//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * scan.c: XDP program on the scanner's interface.
 *
 * Validates replies to xdpscan's own probes in the kernel (TCP SYN-ACK/RST,
 * UDP datagrams, ICMP echo replies, and ICMP errors quoting a probe),
 * de-duplicates them, hands each new one to user space through a ring buffer, and drops
 * it so the host stack never answers with a RST nor spends time on it.
 * Everything else passes untouched.
 *
 * Kernel floor: 5.18 (bpf_xdp_load_bytes and bpf_xdp_get_buff_len, which
 * keep it loadable without CAP_PERFMON: parse.h); ring buffer 5.8, bpf_link
 * XDP attachment 5.9.
 */
#include "include/kernel.h"
#include "include/bpf_helpers.h"
#include "include/bpf_endian.h"
#include "include/parse.h"
#include "include/counters.h"
#include "include/siphash.h"
#include "include/tcpreply.h"
#include "include/send.h"
#include "include/ringwake.h"
#include "include/dedup.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* Set by loader/ before loading. */
volatile const __be32 scanner_ipv4 = 0;    /* network order; 0 = no IPv4 */
/* Our IPv6 address as two words loaded from its bytes in memory order
 * (all zero = no IPv6). Two scalars, not an array: clang may fold reads of a
 * volatile const array through a cast to the initial zeros. */
volatile const __u64 scanner_ipv6_hi = 0;
volatile const __u64 scanner_ipv6_lo = 0;
volatile const __u16 sport_lo = 40000;     /* our probes' source ports */
volatile const __u16 sport_hi = 40255;
volatile const __u64 cookie_k0 = 0;
volatile const __u64 cookie_k1 = 0;
/* Submit without waking the reader until this many bytes wait in the ring;
 * 0 lets the kernel decide (a wakeup whenever the reader has caught up). */
volatile const __u32 ring_wakeup_bytes = 0;
/* Answer every validated SYN-ACK with a RST sent back by XDP_TX instead of
 * only dropping it: the target frees its half-open connection and stops
 * retransmitting. The host stack still never sees the reply. */
volatile const __u8 reset_open = 0;
/* --confirm: a UDP answer may also answer the confirming retry, a second
 * probe to the pair whose hash takes 1 where the first takes the source
 * port 0 (a fresh cookie, probe.UDP.FillConfirm). */
volatile const __u8 udp_confirm = 0;

enum reply_kind {
	REPLY_OPEN = 1,     /* TCP SYN-ACK, or a UDP datagram from the probed port */
	REPLY_CLOSED = 2,   /* TCP RST, or ICMP port unreachable to a UDP probe */
	REPLY_FILTERED = 3, /* another ICMP error quoting the probe (code in the event) */
	REPLY_ALIVE = 4,    /* ICMP echo reply */
};

struct scan_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u8 addr[16];    /* the probed target; IPv4 in the first 4 bytes */
	__u8 from[16];    /* who answered: the target, or a router's ICMP error */
	__u16 port;       /* the target's port, host order; 0 for echo */
	__u16 local_port; /* our probe's source port, host order */
	__u16 ip_id;
	__u16 window;
	__u8 family;      /* 4 or 6 */
	__u8 proto;       /* the probe's protocol: IPPROTO_TCP, _UDP, _ICMP */
	__u8 tcp_flags;
	__u8 ttl;
	__u8 icmp_type;   /* for REPLY_CLOSED/REPLY_FILTERED from an ICMP error */
	__u8 icmp_code;
	__u8 kind;        /* enum reply_kind */
	__u8 confirm;     /* answers the confirming retry (--confirm), not the probe */
};

/* The UDP services whose answers echo cookie bits of our request, keyed by
 * the service's port (probe/payloads.go fills it). kind says where the echo
 * is; len and sum describe the request's payload so that an ICMP error
 * quoting the probe can be checked on its UDP checksum. */
enum udp_echo_kind {
	ECHO_DNS = 1,  /* transaction ID (16 bits) and 0x20 case of "version.bind" (11) */
	ECHO_NTP = 2,  /* origin timestamp = our transmit timestamp (64) */
	ECHO_SNMP = 3, /* request-id (30), at an offset the BER lengths decide */
};

struct udp_echo {
	__u8 kind;
	__u8 pad;
	__u16 len; /* the request's payload length */
	__u32 sum; /* its ones-complement sum with every cookie bit clear */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct udp_echo);
} udp_echoes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__type(value, struct scan_event);
} events SEC(".maps");

static __always_inline __u64 load_be64(const __u8 *b)
{
	__u64 v;
	__builtin_memcpy(&v, b, 8);
	return bpf_be64_to_cpu(v);
}

/* probe_cookie is the keyed hash of a probe's tuple (as the probe was
 * sent: src = us, dst = target); probe/cookie.go is its Go twin. Its low 32
 * bits are "the cookie" (TCP sequence, echo id:seq, UDP source port); the
 * high 32 give the IPv4 ID and the UDP payloads' echoed fields (cookie.go
 * names each share). UDP and
 * ICMP probes hash with sport 0 (UDP's source port is derived from the
 * cookie, ICMP has none), ICMP with dport 0 too. */
static __always_inline __u64 probe_cookie(__u8 family, const __u8 *src, const __u8 *dst,
					  __u8 proto, __u16 sport, __u16 dport)
{
	__u64 ports = (__u64)proto << 32 | (__u64)sport << 16 | dport;

	if (family == 4) {
		__u32 s, d;
		__builtin_memcpy(&s, src, 4);
		__builtin_memcpy(&d, dst, 4);
		__u64 m[2] = {(__u64)bpf_ntohl(s) << 32 | bpf_ntohl(d), ports};
		return siphash24_words(cookie_k0, cookie_k1, m, 2);
	}
	__u64 m[5] = {load_be64(src), load_be64(src + 8), load_be64(dst), load_be64(dst + 8), ports};
	return siphash24_words(cookie_k0, cookie_k1, m, 5);
}

static __always_inline int is_us(__u8 family, const __u8 *addr)
{
	if (family == 4) {
		__be32 a;
		__builtin_memcpy(&a, addr, 4);
		return scanner_ipv4 != 0 && a == scanner_ipv4;
	}
	__u64 want0 = scanner_ipv6_hi, want1 = scanner_ipv6_lo, got0, got1;
	__builtin_memcpy(&got0, addr, 8);
	__builtin_memcpy(&got1, addr + 8, 8);
	return (want0 | want1) != 0 && got0 == want0 && got1 == want1;
}

static __always_inline int ours_port(__u16 port)
{
	return port >= sport_lo && port <= sport_hi;
}

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

/* What a reply must prove, once the cookie of the probe it answers is
 * known. */
enum check {
	CHECK_TCP_ACK = 1,   /* ack - 1 == cookie (or ack == cookie for a RST) */
	CHECK_UDP = 2,       /* our port == udp_sport(cookie), plus the echoed bytes */
	CHECK_ECHO_ID = 3,   /* ICMP id:seq at off == cookie */
	CHECK_QUOTED_SEQ = 4, /* a quoted TCP SYN's sequence number at off == cookie */
	CHECK_QUOTED_UDP = 5, /* a quoted UDP probe: source port, IP ID, length, checksum */
	CHECK_QUOTED_ECHO = 6, /* a quoted echo request: id:seq and IP ID */
};

/* The probe a reply answers, as it was sent. */
struct probe {
	__u8 us[16];
	__u8 target[16];
	__u8 family;
	__u8 proto;
	__u8 kind;
	__u8 check;
	__u16 local_port; /* our source port; 0 for echo */
	__u16 port;       /* the target's; 0 for echo */
	__u32 word;       /* the echoed id:seq, a quoted sequence, or a quoted UDP length:checksum */
};

/* direct_reply fills pr from a TCP or UDP reply sent by the target itself:
 * its destination is our probe's source. */
static __always_inline void direct_reply(const struct packet *p, struct probe *pr, __u8 check)
{
	__builtin_memcpy(pr->us, p->daddr, 16);
	__builtin_memcpy(pr->target, p->saddr, 16);
	pr->proto = p->l4_proto;
	pr->local_port = p->dport;
	pr->port = p->sport;
	pr->check = check;
}

/* classify says which probe p would answer and how to check it; 0 when p
 * cannot be a reply to any of ours. */
static __always_inline int classify(const struct packet *p, struct probe *pr)
{
	pr->family = p->family;
	switch (p->l4_proto) {
	case IPPROTO_TCP:
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
	case IPPROTO_UDP:
		if (!ours_port(p->dport) || !is_us(p->family, p->daddr))
			return 0;
		pr->kind = REPLY_OPEN;
		direct_reply(p, pr, CHECK_UDP);
		return 1;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		break;
	default:
		return 0;
	}
	if (!is_us(p->family, p->daddr))
		return 0;
	if ((p->family == 4 && p->icmp_type == ICMP_ECHOREPLY) ||
	    (p->family == 6 && p->icmp_type == ICMPV6_ECHO_REPLY)) {
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
	if (!p->icmp_error)
		return 0;
	/* parse.h counted a quote too short to read. */
	if (!p->quote_valid || !is_us(p->family, p->quote_saddr))
		return 0;
	__builtin_memcpy(pr->us, p->quote_saddr, 16);
	__builtin_memcpy(pr->target, p->quote_daddr, 16);
	pr->proto = p->quote_proto;
	pr->kind = REPLY_FILTERED;
	switch (p->quote_proto) {
	case IPPROTO_TCP:
		if (!ours_port(p->quote_sport))
			return 0;
		pr->local_port = p->quote_sport;
		pr->port = p->quote_dport;
		pr->check = CHECK_QUOTED_SEQ;
		pr->word = p->quote_l4_word;
		return 1;
	case IPPROTO_UDP:
		if (!ours_port(p->quote_sport))
			return 0;
		pr->local_port = p->quote_sport;
		pr->port = p->quote_dport;
		pr->check = CHECK_QUOTED_UDP;
		pr->word = p->quote_l4_word;
		/* RFC 1122: port unreachable is the host saying nobody listens. */
		if ((p->family == 4 && p->icmp_type == ICMP_DEST_UNREACH && p->icmp_code == 3) ||
		    (p->family == 6 && p->icmp_type == ICMPV6_DEST_UNREACH && p->icmp_code == 4))
			pr->kind = REPLY_CLOSED;
		return 1;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* Our echo request, quoted: its first byte (the "source port"
		 * parse_quote read) is the type. */
		if ((p->quote_sport >> 8) != (p->family == 4 ? ICMP_ECHO : ICMPV6_ECHO_REQUEST))
			return 0;
		pr->local_port = 0;
		pr->port = 0;
		pr->check = CHECK_QUOTED_ECHO;
		pr->word = p->quote_l4_word;
		return 1;
	}
	return 0;
}

/* The cookie's shares (probe/cookie.go names the same). */
static __always_inline __u16 ip_id_of(__u64 h) { return h >> 32; }
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
static __always_inline int dns_ok(struct xdp_md *ctx, const struct packet *p, __u32 pay, __u64 h)
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

static __always_inline int snmp_ok(struct xdp_md *ctx, const struct packet *p, __u32 pay, __u64 h)
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
static __always_inline int udp_echo_ok(struct xdp_md *ctx, const struct packet *p, __u64 h)
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

/* quoted_ip_id_ok: the quote's IPv4 ID or IPv6 flow label (low 16 bits)
 * is the one our probe carried. */
static __always_inline int quoted_ip_id_ok(const struct packet *p, __u64 h)
{
	return p->quote_ip_id == ip_id_of(h);
}

/* udp_check checks a UDP answer or a quote of a UDP probe against hash h. */
static __always_inline int udp_check(struct xdp_md *ctx, const struct packet *p, const struct probe *pr, __u64 h,
				     __u16 sport)
{
	if (pr->local_port != sport)
		return 0;
	if (pr->check == CHECK_UDP)
		return udp_echo_ok(ctx, p, h);
	return quoted_ip_id_ok(p, h) && udp_quote_ok(pr, pr->word, h, pr->local_port);
}

/* validate checks the reply against its probe's cookie: 0 when it fails, 1
 * for an answer to the probe, 2 for one to its confirming retry. */
static __always_inline int validate(struct xdp_md *ctx, const struct packet *p, const struct probe *pr)
{
	__u64 h = probe_cookie(pr->family, pr->us, pr->target, pr->proto,
			       pr->proto == IPPROTO_TCP ? pr->local_port : 0, pr->port);
	__u32 cookie = h;
	switch (pr->check) {
	case CHECK_TCP_ACK:
		/* zmap's rule: some stacks answer a SYN with a RST that does
		 * not count the SYN in its acknowledgement number. */
		return p->tcp_ack - 1 == cookie || (pr->kind == REPLY_CLOSED && p->tcp_ack == cookie);
	case CHECK_UDP:
	case CHECK_QUOTED_UDP:
	{
		/* One copy of the check for both cookies, not two inlined: the
		 * stack would outgrow 512 bytes. */
		int rounds = udp_confirm ? 2 : 1;
		__u16 sport0 = udp_sport(cookie), sport = sport0;
#pragma clang loop unroll(disable)
		for (int salt = 0; salt < rounds; salt++) {
			if (salt) {
				h = probe_cookie(pr->family, pr->us, pr->target, pr->proto, 1, pr->port);
				sport = udp_confirm_sport(h, sport0);
			}
			if (udp_check(ctx, p, pr, h, sport))
				return salt + 1;
		}
		return 0;
	}
	case CHECK_ECHO_ID:
		return pr->word == cookie;
	case CHECK_QUOTED_ECHO:
	case CHECK_QUOTED_SEQ:
		/* id:seq of an echo, or a TCP sequence number, and the IP ID. */
		return pr->word == cookie && quoted_ip_id_ok(p, h);
	}
	return 0;
}

/* ring_flags is for a reserved (not yet submitted) scan_event: the unread
 * data already counts it. */
static __always_inline __u64 ring_flags(void)
{
	if (!ring_wakeup_bytes)
		return 0;
	return ring_wakeup_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA),
				 ring_record_bytes(sizeof(struct scan_event)), ring_wakeup_bytes);
}

/* verdict_for_ours is the fate of a validated reply: a SYN-ACK becomes our
 * RST when reset_open is set (untagged, no IPv4 options nor IPv6 extension
 * headers), else dropped. */
static __always_inline int verdict_for_ours(struct xdp_md *ctx, const struct packet *p, int kind, __u32 ack)
{
	if (!reset_open || kind != REPLY_OPEN || p->l4_proto != IPPROTO_TCP || p->vlan_depth)
		return XDP_DROP;
	int rc;
	if (p->family == 4 && p->l4_off == sizeof(struct ethhdr) + sizeof(struct iphdr))
		rc = tcp_reply(ctx, p->len, TCP_FLAG_RST, ack, 0, 0);
	else if (p->family == 6 && p->l4_off == sizeof(struct ethhdr) + sizeof(struct ipv6hdr))
		rc = tcp_reply6(ctx, p->len, TCP_FLAG_RST, ack, 0, 0);
	else
		return XDP_DROP;
	if (rc)
		return XDP_DROP;
	count(COUNTER_TX, 1);
	return XDP_TX;
}

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
	struct packet p = {};
	struct probe pr = {};

	if (is_send_run(ctx))
		return send_next(ctx);
	int res;
	struct counter_block *c = parse_counted(ctx, &p, &res);
	if (!c)
		return XDP_PASS;
	if (res != PARSE_L4 || !classify(&p, &pr))
		return XDP_PASS;
	int valid = validate(ctx, &p, &pr);
	if (!valid) {
		count_in(c, COUNTER_BAD_COOKIE, 1);
		return XDP_PASS;
	}

	/* From here on the packet is ours: it never reaches the host stack. */
	count_in(c, COUNTER_MATCHED, 1);
	count_in(c, COUNTER_DROPPED, 1);
	__u32 ack = 0;
	__u16 window = 0;
	if (pr.check == CHECK_TCP_ACK) {
		ack = p.tcp_ack;
		window = p.tcp_window;
	}
	int kind = pr.kind;

	/* Keyed by pair and state class (open, or closed/filtered): a later
	 * answer of the other class still reaches user space, which counts the
	 * conflict and keeps the better-validated one (scan/conflict.go);
	 * first-wins in the kernel would let a forged early answer hide the
	 * real one. */
	__u8 class = kind == REPLY_OPEN ? 0x10 : kind == REPLY_ALIVE ? 0 : 0x20;
	if (valid == 2)
		class |= 0x40; /* the confirming retry's answer is another report */
	__u64 fp = dedup_fingerprint(pr.target, pr.port, pr.proto, pr.family | class);
	__u64 *slot = dedup_add(fp);
	if (!slot) {
		count_in(c, COUNTER_DUPLICATES, 1);
		return verdict_for_ours(ctx, &p, kind, ack);
	}

	struct scan_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_in(c, COUNTER_RING_LOST, 1);
		/* Forget the pair so the target's retransmission can still be
		 * reported once the reader catches up. */
		dedup_forget(slot, fp);
		return XDP_DROP; /* no RST: let the target retransmit */
	}
	e->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(e->addr, pr.target, 16);
	__builtin_memcpy(e->from, p.saddr, 16);
	e->port = pr.port;
	e->local_port = pr.local_port;
	e->ip_id = p.ip_id;
	e->window = window;
	e->family = pr.family;
	e->proto = pr.proto;
	e->tcp_flags = p.l4_proto == IPPROTO_TCP ? p.tcp_flags : 0;
	e->ttl = p.ttl;
	e->icmp_type = p.icmp_error ? p.icmp_type : 0;
	e->icmp_code = p.icmp_error ? p.icmp_code : 0;
	e->kind = kind;
	e->confirm = valid == 2;
	bpf_ringbuf_submit(e, ring_flags());
	return verdict_for_ours(ctx, &p, kind, ack);
}
