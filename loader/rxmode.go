package loader

// RxMode is how a scan or a capture receives: through the XDP program this
// package loads (validated, filtered and counted in the kernel), or
// through libpcap (the baseline, everything in user space).
type RxMode string

const (
	RxXDP  RxMode = "xdp"
	RxPcap RxMode = "pcap"
)
