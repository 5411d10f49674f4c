/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dedup.h: report each (address, port, protocol) once.
 *
 * Targets retransmit SYN-ACKs, so a reply may arrive several times. The set
 * of pairs already reported is a table of 64-bit fingerprints in buckets of
 * eight (DEDUP_WAYS, 64 bytes): one cache line touched per reply. It
 * replaced an LRU hash map whose inserts (a bucket, a node taken from the
 * LRU free list, the list itself) were 15-20% of a max-rate scan's CPU under
 * perf.
 *
 * Misses only ever cost a duplicate, never a lost pair: a full bucket
 * overwrites one slot (the pair it held may be reported again), and two CPUs
 * racing on a bucket may both report or one may overwrite the other. A new
 * pair is wrongly taken as seen only if its 64-bit fingerprint equals one
 * already in its bucket. No atomics, so the program keeps clang's default
 * BPF instruction set.
 */
#ifndef XDPSCAN_DEDUP_H
#define XDPSCAN_DEDUP_H

#include "kernel.h"
#include "bpf_helpers.h"

#define DEDUP_WAYS 8

struct dedup_bucket {
	__u64 fp[DEDUP_WAYS]; /* 0 = empty */
};

/* Sized by loader/ to a power of two; dedup_mask is its size - 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 16);
	__type(key, __u32);
	__type(value, struct dedup_bucket);
} dedup SEC(".maps");

volatile const __u32 dedup_mask = (1 << 16) - 1;

/* mix64 is MurmurHash3's finaliser: every input bit moves every output bit.
 * Replies reach the table only after their cookie has been checked, so an
 * unkeyed hash is enough: no one outside can choose the pairs. */
static __always_inline __u64 mix64(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* dedup_fingerprint of a probed pair; never 0. */
static __always_inline __u64 dedup_fingerprint(const __u8 addr[16], __u16 port, __u8 proto, __u8 family)
{
	__u64 hi, lo;
	__builtin_memcpy(&hi, addr, 8);
	__builtin_memcpy(&lo, addr + 8, 8);
	__u64 h = mix64(hi ^ 0x9e3779b97f4a7c15ULL);
	h = mix64(h ^ lo);
	h = mix64(h ^ ((__u64)port << 16 | (__u64)proto << 8 | family));
	return h ? h : 1;
}

/* dedup_add records fp. It returns NULL if fp was already there (or the
 * table is missing), else the slot now holding it, for dedup_forget. */
static __always_inline __u64 *dedup_add(__u64 fp)
{
	__u32 idx = (__u32)(fp >> 32) & dedup_mask;
	struct dedup_bucket *b = bpf_map_lookup_elem(&dedup, &idx);
	if (!b)
		return NULL;
#pragma unroll
	for (int i = 0; i < DEDUP_WAYS; i++)
		if (b->fp[i] == fp)
			return NULL;
#pragma unroll
	for (int i = 0; i < DEDUP_WAYS; i++) {
		if (b->fp[i] == 0) {
			b->fp[i] = fp;
			return &b->fp[i];
		}
	}
	/* The way fp evicts, by a branch per way: b + (fp & 7) * 8 would add
	 * a register to a map value pointer, which the verifier hardens
	 * without CAP_PERFMON and refuses when the paths reaching the add
	 * disagree; each way's slot is an immediate offset instead. */
	__u64 *victim;
	switch (fp & (DEDUP_WAYS - 1)) {
#define DEDUP_WAY(W)                                                          \
	case W:                                                               \
		asm volatile("%[s] = %[b]\n\t%[s] += %[o]"                    \
			     : [s] "=&r"(victim)                              \
			     : [b] "r"(b), [o] "i"(W * sizeof(__u64)));       \
		break;
	DEDUP_WAY(0) DEDUP_WAY(1) DEDUP_WAY(2) DEDUP_WAY(3)
	DEDUP_WAY(4) DEDUP_WAY(5) DEDUP_WAY(6)
	default:
		asm volatile("%[s] = %[b]\n\t%[s] += %[o]"
			     : [s] "=&r"(victim)
			     : [b] "r"(b), [o] "i"(7 * sizeof(__u64)));
		break;
#undef DEDUP_WAY
	}
	*victim = fp;
	return victim;
}

/* dedup_forget undoes dedup_add, unless another pair took the slot since. */
static __always_inline void dedup_forget(__u64 *slot, __u64 fp)
{
	if (*slot == fp)
		*slot = 0;
}

#endif
