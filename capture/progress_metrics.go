package capture

import (
	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/loader"
)

// ReadCounters reads the XDP counters since the capture began (the
// figures --stats-json reports), with the error Counters hides: once the
// capture is over its maps are closed, and a reader (the metrics
// collector) must keep its last good reading rather than zeros.
func (p *Progress) ReadCounters() (loader.Counters, error) {
	if p.counters == nil {
		return loader.Counters{}, nil
	}
	return p.counters()
}

// Program is the attached capture program (nil for libpcap).
func (p *Progress) Program() *ebpf.Program { return p.program }

// ReadDirection reads one direction's counters since the capture began
// (outbound: -Q out's TC program); ok is false for a direction not
// captured by a program of its own (libpcap, offline).
func (p *Progress) ReadDirection(outbound bool) (c loader.Counters, ok bool, err error) {
	i := 0
	if outbound {
		i = 1
	}
	if p.dir[i] == nil {
		return loader.Counters{}, false, nil
	}
	c, err = p.dir[i]()
	return c, true, err
}
