package scan

import (
	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/loader"
)

// ReadCounters reads the XDP program's counters, with the error Counters
// hides: once the scan is over its maps are closed, and a reader (the
// metrics collector) must keep its last good reading rather than zeros.
// A scan without an XDP program reads zeros.
func (p *Progress) ReadCounters() (loader.Counters, error) {
	if p.counters == nil {
		return loader.Counters{}, nil
	}
	return p.counters()
}

// Program is the attached XDP program (nil before setup, and for the
// connect and libpcap paths): its run statistics for the metrics.
func (p *Progress) Program() *ebpf.Program { return p.program }
