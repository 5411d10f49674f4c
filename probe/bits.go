package probe

import "math/bits"

// WeakBits is the fewest keyed cookie bits an answer must prove to be
// printed as it arrives. An answer resting on fewer (a UDP service that
// echoes nothing, answering from a port whose only cookie is the source
// port) could be a blind forger's hit: it is held until the scan's end, and
// loses to a conflicting answer that proves more (scan/conflict.go).
const WeakBits = 32

// SourcePortBits is how many cookie bits a UDP probe's source port holds:
// log2 of the range's size, rounded down.
func SourcePortBits(lo, hi uint16) int {
	return bits.Len32(uint32(hi)-uint32(lo)+1) - 1
}

// AnswerBits is how many keyed cookie bits an answer proves, as
// bpf/include/scan_reply.h checks it: proto is the probe's, quoted says the answer is an
// ICMP error quoting the probe, port is the target's, ipv4 the family.
func AnswerBits(proto uint8, quoted, ipv4 bool, port uint16, sportBits int) int {
	n := 0
	if quoted {
		n += 16 // the quoted IPv4 ID or IPv6 flow label
	}
	switch proto {
	case 6, 1, 58: // TCP sequence, echo id:seq
		return n + 32
	case 17:
		n += sportBits
		p := PayloadFor(port)
		if quoted {
			if p.Echo != 0 {
				// The quoted checksum covers the payload's cookie
				// bits; over the empty payload it adds nothing a
				// forger who guessed the port does not know.
				n += 16
			}
			return n
		}
		return n + p.EchoBits()
	}
	return n
}
