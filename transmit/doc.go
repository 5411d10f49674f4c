// Package transmit sends prebuilt probe frames: the Sender interface and
// its two implementations, Socket (AF_PACKET sendmmsg, CAP_NET_RAW, any
// kernel) and XDP (the scan program's transmitter run by BPF_PROG_RUN in
// live-frames mode, Linux 5.18; its relay to another CPU, a cpumap, 5.9).
// All batch sizes, the relay's flow control and the "did the veth peer
// take them" check are here; loader only loads and runs the program.
package transmit
