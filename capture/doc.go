// Package capture is xdpscan capture: run a filtered capture through the
// capture XDP program and its ring (loader; Linux 5.8 for the ring, 5.18
// for the program as loaded) or through libpcap (the baseline), and write
// the packets as pcap or pcapng files. It shares nothing with scan.
package capture
