package filter

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// LiveError is CompileLive's refusal when libpcap cannot open a live
// handle on the interface (no CAP_NET_RAW, no such interface, not
// Ethernet): the filter was not compiled.
type LiveError struct{ Iface, Reason string }

func (e *LiveError) Error() string {
	return fmt.Sprintf("libpcap cannot open %s to compile the filter as tcpdump does for a live capture: %s", e.Iface, e.Reason)
}

// IsLiveError says whether err is CompileLive's failure to open the
// interface (rather than a filter libpcap refuses).
func IsLiveError(err error) bool {
	var le *LiveError
	return errors.As(err, &le)
}

// CompileLive compiles expr exactly as `tcpdump -i iface` does on Linux
// (`tcpdump -i IFACE -d EXPR` prints the same code): libpcap with an
// activated handle on iface knows the kernel's socket filters can read
// the packet's metadata, and compiles `vlan`, `vlan N` to SKF_AD_VLAN_TAG_PRESENT
// and SKF_AD_VLAN_TAG loads (the kernel moves a received frame's outer tag
// into metadata before AF_PACKET taps run: `tcp` then matches TCP inside
// a VLAN), and `inbound`/`outbound` to SKF_AD_PKTTYPE. Translate answers
// those loads from the frame XDP sees (Shape.Tagged). Opening the handle
// needs CAP_NET_RAW; without it the error is a *LiveError and the caller
// can fall back to Compile (the savefile code, as `tcpdump -r`).
func CompileLive(ctx context.Context, iface, expr string, snaplen int) ([]bpf.RawInstruction, error) {
	if iface == "" {
		return nil, fmt.Errorf("compile for a live capture: no interface named")
	}
	return compileAbandonable(ctx, expr, snaplen, func() ([]bpf.RawInstruction, error) {
		return compileOn(iface, expr, snaplen, MaxInstructions)
	})
}
