// Package probe is what a raw probe is, per kind: the frame templates (TCP
// SYN, UDP with its service payload, ICMP echo), the cookie each carries
// (the same SipHash as probe_cookie() in bpf/include/scan_reply.h), the UDP payload table
// and its echo offsets for the scan program, and what a reply means (reply
// kinds, ICMP reasons). The scan program validates the replies in the
// kernel; probe/scan_roundtrip_test.go checks that these frames and that
// validation agree. Pure Go: the frames are built here, sent by transmit/.
package probe
