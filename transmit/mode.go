package transmit

// Mode is how raw probes leave: Socket (AF_PACKET sendmmsg, the default)
// or XDP (the scan program's transmitter, BPF_PROG_RUN live frames).
type Mode string

const (
	ModeSocket Mode = "socket"
	ModeXDP    Mode = "xdp"
)
