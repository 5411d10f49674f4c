package loader

import "github.com/cilium/ebpf"

// Running is what readers outside a run (the status line, the metrics
// collectors) read of the programs a scan or a capture has loaded: their
// counters since the run began, and the program whose run statistics the
// metrics report. The run sets them once, before it says it is ready;
// the zero Running (libpcap, connect, before setup) reads zeros and no
// program.
type Running struct {
	counters func() (Counters, error)
	program  *ebpf.Program
}

// SetCounters says how to read the run's counters.
func (r *Running) SetCounters(read func() (Counters, error)) { r.counters = read }

// SetProgram names the run's main program.
func (r *Running) SetProgram(p *ebpf.Program) { r.program = p }

// Counters reads the counters now; zeros on error.
func (r *Running) Counters() Counters {
	c, _ := r.ReadCounters()
	return c
}

// ReadCounters reads the counters, with the error Counters hides: once
// the run is over its maps are closed, and a reader (the metrics
// collector) must keep its last good reading rather than zeros.
func (r *Running) ReadCounters() (Counters, error) {
	if r.counters == nil {
		return Counters{}, nil
	}
	return r.counters()
}

// Program is the run's main program (nil when it has none).
func (r *Running) Program() *ebpf.Program { return r.program }
