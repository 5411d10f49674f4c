package loader

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/bpf"
)

// ResponderConfig configures the testbed's XDP responder target.
type ResponderConfig struct {
	Range        netip.Prefix // IPv4 range it answers for
	OpenPorts    []uint16     // at most 16
	FilteredFrom uint8        // last octets >= this are dropped silently
}

// Responder is the loaded XDP responder.
type Responder struct {
	Objects bpf.ResponderObjects
}

// LoadResponder loads the responder configured by cfg.
func LoadResponder(cfg ResponderConfig) (*Responder, error) {
	if !cfg.Range.Addr().Is4() {
		return nil, fmt.Errorf("load responder: range %s is not IPv4", cfg.Range)
	}
	var ports [16]uint16
	if len(cfg.OpenPorts) > len(ports) {
		return nil, fmt.Errorf("load responder: %d open ports, at most %d", len(cfg.OpenPorts), len(ports))
	}
	copy(ports[:], cfg.OpenPorts)
	if err := prepare(); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadResponder()
	if err != nil {
		return nil, fmt.Errorf("read embedded responder: %w", err)
	}
	r := cfg.Range.Masked()
	mask := ^uint32(0) << (32 - r.Bits())
	if r.Bits() == 0 {
		mask = 0
	}
	var maskBytes [4]byte
	binary.BigEndian.PutUint32(maskBytes[:], mask)
	for name, value := range map[string]any{
		"range_addr":    r.Addr().As4(),
		"range_mask":    maskBytes,
		"filtered_from": cfg.FilteredFrom,
		"open_ports":    ports,
		"n_open_ports":  uint32(len(cfg.OpenPorts)),
	} {
		if err := setVar(spec, name, value); err != nil {
			return nil, fmt.Errorf("configure responder: %w", err)
		}
	}
	res := &Responder{}
	if err := spec.LoadAndAssign(&res.Objects, nil); err != nil {
		return nil, loadError("responder", err)
	}
	return res, nil
}

// Program is the XDP program to attach.
func (r *Responder) Program() *ebpf.Program { return r.Objects.XdpscanResponder }

// Counters sums the responder's per-CPU counters.
func (r *Responder) Counters() (Counters, error) { return ReadCounters(r.Objects.Counters) }

// Close releases the program and its maps.
func (r *Responder) Close() error { return r.Objects.Close() }
