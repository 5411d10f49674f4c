/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpuring.h: a ring buffer per receiving CPU.
 *
 * A BPF ring buffer's producers share one spinlock: with several CPUs
 * receiving, every record's reserve bounces its cache line between them
 * (the kernel's own ringbuf benchmark: 10.9M records/s with one producer,
 * 2.6M/s with 16). cpu_rings is an array of ring buffers indexed by CPU id;
 * the loader (loader.LoadCapture with CPURings) puts a ring in the slot of
 * each CPU that receives, and may give CPUs that rarely receive a shared
 * one. A CPU whose slot is empty, or a program loaded without per-CPU
 * rings (the default), uses the one shared ring, `events`, which the
 * includer defines before this header: RING_EVENTS names it.
 *
 * Usage:  void *ring = ring_here();
 *         r = bpf_ringbuf_reserve(ring, size, 0); ...
 *         bpf_ringbuf_submit(r, ring_wakeup_flags(
 *                 bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA), ...));
 *
 * Each record still carries its CPU; user space merges the rings in
 * timestamp order (internal/reorder). Kernel floor: 5.8 (ring buffers in
 * map-in-map).
 */
#ifndef XDPSCAN_CPURING_H
#define XDPSCAN_CPURING_H

#include "kernel.h"
#include "bpf_helpers.h"

/* BPF_MAP_TYPE_ARRAY_OF_MAPS, kept here rather than in kernel.h's enum,
 * which other programs' changes touch. */
#define CPURING_ARRAY_OF_MAPS 12

/* loader.MaxCPURings: CPU ids at or above it use the shared ring. */
#define MAX_CPU_RINGS 256

struct {
	__uint(type, CPURING_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_CPU_RINGS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_RINGBUF);
		__uint(max_entries, 1 << 22);
	});
} cpu_rings SEC(".maps");

/* Set by the loader when it filled cpu_rings: a program without them pays
 * no lookup. */
volatile const __u8 per_cpu_rings = 0;

static __always_inline void *ring_here(void)
{
	if (!per_cpu_rings)
		return &RING_EVENTS;
	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&cpu_rings, &cpu);
	return ring ? ring : (void *)&RING_EVENTS;
}

#endif /* XDPSCAN_CPURING_H */
