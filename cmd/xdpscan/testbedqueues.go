package main

import (
	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/testbed"
)

// addQueuesFlag registers testbed up's --queues.
func addQueuesFlag(fs *flag.FlagSet, n *int, set *bool) {
	*set = true
	fs.IntVar(n, "queues", 1, "RX and TX queues on both veth ends; above 1 also GRO (NAPI) on both, and on the kernel\n"+
		"target threaded NAPI, so receive work spreads over the CPUs: senders on different CPUs feed\n"+
		"different queues (the xdp target keeps NAPI in the sending CPU's softirq, as scan --tx xdp needs)")
}

// checkQueues refuses a queue count veth cannot have.
func checkQueues(n int) error {
	if n < 1 || n > testbed.MaxQueues {
		return usageError("testbed up: --queues %d: use 1 to %d", n, testbed.MaxQueues)
	}
	return nil
}
