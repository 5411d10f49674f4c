package scan

import (
	"context"

	"github.com/xdpscan/xdpscan/targets"
)

// PingFirst is --ping-first's discovery: one echo request to every target
// of cfg (its ports are ignored), and the hosts that answered. emit sees
// every result as it comes (the "up" lines are the scan's output too).
func PingFirst(ctx, stop context.Context, cfg Config, progress *Progress, emit func(Result)) (targets.RangeSet, Stats, error) {
	cfg.Ports = []targets.Port{targets.Echo}
	var up []targets.Range
	st, err := Run(ctx, stop, cfg, progress, func(r Result) {
		emit(r)
		if r.State == StateUp {
			up = append(up, targets.Range{Lo: r.Addr, Hi: r.Addr})
		}
	})
	if err != nil {
		return targets.RangeSet{}, st, err
	}
	return targets.NewRangeSet(up), st, nil
}
