/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * send.h: the kernel-side transmitter of `scan --tx xdp`, part of the scan
 * program.
 *
 * User space builds a batch of probe frames (the same Go templates as the
 * socket path) straight into the memory-mapped array `send_slots`, sets
 * send_states[0] = {next 0, limit n}, and makes one BPF_PROG_RUN call of the
 * scan program in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) with repeat
 * n and 16 bytes of metadata holding send_magic and the sender's index
 * (struct send_meta). Each run turns the next slot
 * into the frame it is given and returns XDP_TX, which live-frames mode
 * turns into a redirect out of the ingress ifindex: no socket, no skb on the
 * sending side, one syscall per batch.
 *
 * Why inside the scan program: BPF_PROG_RUN with repeat > 1 adds the program
 * to the kernel's XDP dispatcher and removes it afterwards, each an image
 * update that waits for a grace period (~24 ms a call here). A program that
 * is attached somewhere is already in the dispatcher, and then a call costs
 * microseconds. The scan program is attached for the whole scan.
 *
 * Live-frames mode recycles its pages without rewriting them, so every run
 * writes the whole frame and sets its length (the metadata bytes, never
 * written, stay). A run past `limit` sends nothing: if the syscall is
 * interrupted and retried, the batch goes out exactly once.
 *
 * With a relay CPU (loader.SendRelay), each run returns XDP_REDIRECT into
 * the cpumap entry of that CPU instead of XDP_TX: the kernel queues the
 * frame for the entry's kthread, which runs xdpscan_send_relay on it there;
 * that program counts it and redirects it out of the same interface. The
 * transmit (and, on veth, the peer's whole receive path, which runs in the
 * transmitting CPU's softirq) then happens on the relay CPU, and the count
 * gives the sender flow control: it never has more frames queued than the
 * entry's queue holds (engine.XDPTransmitter).
 *
 * Kernel floor: 5.18 (live frames, bpf_xdp_store_bytes); the relay needs
 * programs in cpumap entries that may redirect (5.9).
 */
#ifndef XDPSCAN_SEND_H
#define XDPSCAN_SEND_H

#include "kernel.h"
#include "bpf_helpers.h"

/* SEND_FRAME is loader.SendFrame; the slot count is set at load time. */
#define SEND_FRAME 256

struct send_slot {
	__u32 len;
	__u32 _pad;
	__u8 frame[SEND_FRAME];
};

/* One per sender (--senders N), each on its own cache line: the senders'
 * runs on different CPUs write them every frame. */
struct send_state {
	__u32 next;  /* the slot the next run sends */
	__u32 limit; /* slots [0, limit) hold this batch */
	__u32 page;  /* the frame length of data_in, which every run starts from */
	__u32 _pad;
	__u64 sent;  /* frames handed to XDP_TX, over all batches */
	__u64 bad;   /* slots refused: a length out of range, or a failed resize */
	__u64 _line[4];
};

/* The metadata of a transmitter run: the magic, and which sender's slots
 * and state it takes. Sender k owns slots [k * send_batch, (k + 1) *
 * send_batch). All senders run this one program, which is attached: a
 * second, unattached instance (as --senders 2 first had) enters and
 * leaves the kernel's XDP dispatcher on every call, two text pokes with
 * IPIs to every CPU (measured: 14% of a 2-sender scan's samples in
 * __text_poke, and 2 senders slower than 1). */
struct send_meta {
	__u64 magic;
	__u32 sender;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* loader: the transmitter's batch x senders, when --tx xdp */
	__type(key, __u32);
	__type(value, struct send_slot);
} send_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* loader: the senders */
	__type(key, __u32);
	__type(value, struct send_state);
} send_states SEC(".maps");

/* The relay: the loader sets max_entries to the possible CPUs and puts one
 * entry, {queue length, xdpscan_send_relay}, at send_relay_cpu. */
struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} send_relay SEC(".maps");

/* Frames the relay program has seen, over all batches. Its own map (its
 * own page) so the relay CPU's writes never share a cache line with the
 * sender's. Only the entry's one kthread writes it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} send_relayed SEC(".maps");

#define SEND_NO_RELAY 0xffffffffu
volatile const __u32 send_relay_cpu = SEND_NO_RELAY;

/* A random value drawn at load time; 0 turns the transmitter off. */
volatile const __u64 send_magic = 0;
/* Slots a sender (loader: ScanConfig.SendSlots). */
volatile const __u32 send_batch = 0;

/* is_send_run says whether this run is the transmitter's: its metadata is
 * send_magic. A received packet has no such metadata. */
static __always_inline int is_send_run(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;
	if (!send_magic || meta + sizeof(struct send_meta) > data)
		return 0;
	return ((struct send_meta *)meta)->magic == send_magic;
}

static __always_inline int send_next(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;
	if (meta + sizeof(struct send_meta) > data)
		return XDP_ABORTED;
	__u32 k = ((struct send_meta *)meta)->sender;
	struct send_state *st = bpf_map_lookup_elem(&send_states, &k);
	if (!st)
		return XDP_ABORTED;
	/* One thread at a time runs each sender's batches (its send loop),
	 * so plain increments of its own state are safe. */
	__u32 i = st->next;
	if (i >= st->limit || i >= send_batch)
		return XDP_DROP;
	st->next = i + 1;
	__u32 slot = k * send_batch + i;
	struct send_slot *s = bpf_map_lookup_elem(&send_slots, &slot);
	if (!s)
		return XDP_DROP;
	__u32 len = s->len;
	if (len < 14 || len > SEND_FRAME) {
		st->bad++;
		return XDP_DROP;
	}
	/* The frame leaves without the metadata; the recycled page keeps it. */
	if (bpf_xdp_adjust_meta(ctx, sizeof(struct send_meta)) ||
	    bpf_xdp_adjust_tail(ctx, (int)len - (int)st->page) ||
	    bpf_xdp_store_bytes(ctx, 0, s->frame, len)) {
		st->bad++;
		return XDP_DROP;
	}
	st->sent++;
	if (send_relay_cpu != SEND_NO_RELAY)
		return bpf_redirect_map(&send_relay, send_relay_cpu, 0);
	return XDP_TX;
}

/* send_relay_frame is the relay program's body (see the top of the file):
 * the frame leaves the interface the sender named, from the relay CPU. */
static __always_inline int send_relay_frame(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&send_relayed, &zero);
	if (n)
		*n += 1;
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

#endif /* XDPSCAN_SEND_H */
