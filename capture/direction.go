package capture

import (
	"fmt"

	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/loader"
)

// Direction is which packets a capture records, as tcpdump's -Q: those
// the interface receives (XDP), those it sends (a TC egress program), or
// both.
type Direction string

const (
	DirInOut Direction = "inout" // tcpdump's default
	DirIn    Direction = "in"
	DirOut   Direction = "out"
)

// ParseDirection reads -Q's value; "" is tcpdump's default, inout.
func ParseDirection(s string) (Direction, error) {
	switch Direction(s) {
	case "", DirInOut:
		return DirInOut, nil
	case DirIn, DirOut:
		return Direction(s), nil
	}
	return "", fmt.Errorf("-Q %q: use in, out or inout (tcpdump's words)", s)
}

// In reports whether d records received packets.
func (d Direction) In() bool { return d != DirOut }

// Out reports whether d records sent packets.
func (d Direction) Out() bool { return d == DirOut || d == DirInOut }

// DirStats are one direction's figures (--stats-json "inbound" and
// "outbound").
type DirStats struct {
	Seen     uint64 `json:"seen"`
	Matched  uint64 `json:"matched"`
	Written  uint64 `json:"written"`
	RingLost uint64 `json:"ring_lost"`
	Bytes    uint64 `json:"bytes"` // seen, on the wire
	// Hook is how the direction was captured: "xdp generic", "xdp
	// native", "tcx", "clsact".
	Hook string `json:"hook"`
}

func (s *DirStats) add(c loader.Counters) {
	s.Seen, s.Matched, s.RingLost, s.Bytes = c.Packets, c.Matched, c.RingLost, c.Bytes
}

func egressConfig(cfg Config, raw []cbpf.RawInstruction) loader.CaptureConfig {
	ring, wakeup := cfg.ring() // -B and --immediate-mode, as the XDP program's
	return loader.CaptureConfig{Filter: raw, Snaplen: min(cfg.Snaplen, loader.MaxSnaplen), CountOnly: cfg.CountOnly,
		RingBytes: ring, RingWakeupBytes: wakeup}
}
