package main

import (
	"fmt"
	"os"

	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/loader"
)

// directionOpts are capture's -Q and --egress-hook.
type directionOpts struct {
	direction, hook string
}

// addDirectionFlags registers tcpdump's -Q/--direction and the egress
// hook's choice on fs.
func addDirectionFlags(fs *flag.FlagSet, o *directionOpts) {
	const dirHelp = "direction to capture (tcpdump's -Q): in (received: XDP), out (sent: a TC egress program), or inout"
	fs.StringVar(&o.direction, "Q", "inout", dirHelp)
	fs.StringVar(&o.direction, "direction", "inout", "same as -Q")
	fs.StringVar(&o.hook, "egress-hook", "auto", "how -Q out|inout attaches: auto (tcx from Linux 6.6, clsact below), tcx, or clsact")
}

// parse checks the flags and returns the direction and the egress hook.
func (o *directionOpts) parse() (capture.Direction, loader.EgressHook, error) {
	dir, err := capture.ParseDirection(o.direction)
	if err != nil {
		return "", "", usageError("capture: %v", err)
	}
	switch h := loader.EgressHook(o.hook); h {
	case loader.HookAuto, loader.HookTCX, loader.HookClsact:
		return dir, h, nil
	}
	return "", "", usageError("capture: --egress-hook %q: use auto, tcx or clsact", o.hook)
}

// printDirections is the summary's line per direction captured.
func printDirections(st capture.Stats) {
	for _, d := range []struct {
		name string
		s    *capture.DirStats
	}{{"in ", st.Inbound}, {"out", st.Outbound}} {
		if d.s == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "xdpscan: %s seen %d, matched %d, written %d, ring lost %d (%s)\n",
			d.name, d.s.Seen, d.s.Matched, d.s.Written, d.s.RingLost, d.s.Hook)
	}
}
