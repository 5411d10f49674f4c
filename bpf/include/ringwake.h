/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ringwake.h: when to wake the ring buffer's reader.
 *
 * The reader sleeps in epoll until woken, and each wakeup is an irq_work: a
 * self-IPI, which in a VM is a trap to the hypervisor (perf showed 11% of a
 * flood's CPU in the APIC write when every record past a threshold woke the
 * reader). So records are submitted without a wakeup, and only the record
 * whose end carries the unread data across a multiple of `every` bytes
 * wakes the reader: one wakeup per `every` bytes however far the reader
 * lags, and a crossing missed in a race between CPUs is caught at the next
 * multiple (or by the reader's own poll timeout).
 */
#ifndef XDPSCAN_RINGWAKE_H
#define XDPSCAN_RINGWAKE_H

#include "kernel.h"

/* BPF_RINGBUF_HDR_SZ: each record's header in the ring. */
#define RINGBUF_HDR_SZ 8

/* ring_record_bytes is the room a record of n bytes takes in the ring. */
static __always_inline __u64 ring_record_bytes(__u64 n)
{
	return (n + RINGBUF_HDR_SZ + 7) & ~7ULL;
}

/* ring_wakeup_flags: avail is the unread data including this record, rec
 * the record's room. every == 0 leaves wakeups to the kernel (it wakes the
 * reader when the reader had caught up). */
static __always_inline __u64 ring_wakeup_flags(__u64 avail, __u64 rec, __u32 every)
{
	if (!every)
		return 0;
	if (avail < rec)
		return BPF_RB_NO_WAKEUP;
	return avail / every != (avail - rec) / every ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#endif /* XDPSCAN_RINGWAKE_H */
