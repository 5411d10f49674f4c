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
