// Package scan runs a scan: its Config and validation, the walk of the
// permutation and its pacing, the raw path (probe templates handed to a
// transmit.Sender, replies validated by the scan XDP program and read from
// its ring: loader, Linux 5.8 for the ring, 5.18 for --tx xdp), the libpcap
// receive baseline (--rx pcap), the connect scan (kernel sockets, no
// privilege), results and stats, and the resume position.
package scan
