package main

import (
	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/scan"
)

// addSendersFlag registers --senders (zmap's -T/--sender-threads).
func addSendersFlag(fs *flag.FlagSet, n *int) {
	fs.IntVar(n, "senders", 1, "sending threads, each on its own CPU (and so its own TX queue) with an equal share of\n"+
		"--rate, taking batches from whichever of the probes' 64 slices is free, so one busy CPU does\n"+
		"not hold the scan back; zmap's -T. A resume may use another number")
	fs.IntVar(n, "T", 1, "same as --senders")
}

// addScanRingsFlag registers scan's --rings, capture's word for the same
// choice.
func addScanRingsFlag(fs *flag.FlagSet, mode *string) {
	fs.StringVar(mode, "rings", "auto", "ring buffers for the replies: auto (one per CPU that receives replies, from 2 such CPUs up), shared (one\n"+
		"for all CPUs) or per-cpu; --stats-json \"rings\" says what was chosen")
}

// checkScanRings reads --rings: the XDP receive path's choice.
func checkScanRings(f *scanFlags) (loader.RingsMode, error) {
	mode, err := loader.ParseRingsMode(f.rings)
	if err != nil {
		return "", usageError("%v", err)
	}
	if mode != loader.RingsAuto && (f.connect || f.rx == string(loader.RxPcap)) {
		return "", usageError("--rings %s: the replies go through ring buffers on the XDP receive path only; drop it with --connect or --rx pcap", f.rings)
	}
	return mode, nil
}

// checkSenders refuses --senders where it cannot apply.
func checkSenders(f *scanFlags) error {
	switch {
	case f.senders < 1 || f.senders > scan.MaxSenders:
		return usageError("--senders %d: use 1 to %d", f.senders, scan.MaxSenders)
	case f.senders > 1 && f.connect:
		return usageError("--senders %d: --connect has its own workers (--workers); drop --senders", f.senders)
	case f.senders > 1 && f.txRelayCPU >= 0:
		return usageError("--senders %d with --tx-relay-cpu: the relay is one CPU's thread; use one of them", f.senders)
	}
	return nil
}

// floodSendersFlag registers bench flood's --senders.
func floodSendersFlag(fs *flag.FlagSet) *int {
	return fs.Int("senders", 1, "sending threads, each pinned to its own CPU (its own TX queue, and on a testbed with\n"+
		"--queues its own RX queue at the peer), each sending an equal share of --count")
}

func checkFloodSenders(n int, gen string) error {
	switch {
	case n < 1 || n > scan.MaxSenders:
		return usageError("bench flood: --senders %d: use 1 to %d", n, scan.MaxSenders)
	case n > 1 && gen != "socket":
		return usageError("bench flood: --senders %d needs --gen socket (the XDP generator sends from one thread)", n)
	}
	return nil
}
