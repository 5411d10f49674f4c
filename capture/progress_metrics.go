package capture

import (
	"github.com/xdpscan/xdpscan/loader"
)

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
