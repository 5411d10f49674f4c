package loader

// The scan's and the capture's rings. The programs wake the reader only
// when a quarter of the ring waits unread; below that the reader finds the
// records on its own poll (ringbuf.Options.PollInterval, 5 ms). Each wakeup
// is a self-IPI on the producing CPU, a trap to the hypervisor in a VM: at
// one per 256 KiB, 2% of a 2M packets/s capture's CPU (perf), ~40-55 ns per
// packet; at one per 4 MiB, none at that rate.
const (
	RingBytes       = 1 << 24
	RingWakeupBytes = RingBytes / 4
)
