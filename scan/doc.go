// Package scan runs a scan: its Config and validation, the walk of the
// permutation and its pacing, the raw path (probe templates handed to a
// transmit.Sender, replies validated by the scan XDP program and read from
// its ring: the loader's kernel floor, Linux 5.18), the libpcap receive
// baseline (--rx pcap), the connect scan (kernel sockets, any kernel, no
// privilege), --ping-first discovery, results and stats, the seed, and the
// resume position, file and checkpoints.
package scan
