package scan

import "github.com/xdpscan/xdpscan/probe"

// Seed is the permutation seed: the one asked for (--seed, not 0), or one
// derived from the scan's fresh cookie key, so each scan has its own order.
func Seed(asked uint64, key probe.CookieKey) uint64 {
	if asked != 0 {
		return asked
	}
	return key[0] ^ key[1]
}
