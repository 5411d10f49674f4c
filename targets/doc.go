// Package targets holds what a scan is aimed at: address sets (IPv4 and
// IPv6 ranges, the blocklist and excludes), port specs, and the
// permutation that orders and shards the probes. Pure Go, no kernel.
package targets
