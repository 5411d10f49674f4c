// Package capture is xdpscan capture: run a filtered capture through the
// capture XDP program and its ring (loader's kernel floor, Linux 5.18) or
// through libpcap (the baseline, any kernel), and write the packets as pcap
// or pcapng files. It shares nothing with scan.
package capture
