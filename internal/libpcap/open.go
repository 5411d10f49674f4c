// Package libpcap opens the libpcap receive path that both baselines use
// (scan --rx pcap and capture --rx pcap), so they measure the same thing.
// Needs CAP_NET_RAW; any kernel.
package libpcap

import (
	"fmt"
	"time"

	"github.com/gopacket/gopacket/pcap"
)

// Open opens the libpcap receive path both baselines use (the scan's
// --rx pcap and capture's --rx pcap): a 16 MiB TPACKET buffer, a 10ms read
// timeout so a stop is noticed, received packets only (what XDP sees), and
// the filter compiled by libpcap.
func Open(iface string, snaplen int, filter string) (*pcap.Handle, error) {
	in, err := pcap.NewInactiveHandle(iface)
	if err != nil {
		return nil, fmt.Errorf("libpcap on %s: %w", iface, err)
	}
	defer in.CleanUp()
	for _, step := range []error{in.SetSnapLen(snaplen), in.SetPromisc(false),
		in.SetTimeout(10 * time.Millisecond), in.SetBufferSize(16 << 20)} {
		if step != nil {
			return nil, fmt.Errorf("libpcap on %s: %w", iface, step)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, fmt.Errorf("libpcap on %s: %w (needs CAP_NET_RAW)", iface, err)
	}
	if err := h.SetDirection(pcap.DirectionIn); err != nil {
		h.Close()
		return nil, fmt.Errorf("libpcap on %s: direction: %w", iface, err)
	}
	if err := h.SetBPFFilter(filter); err != nil {
		h.Close()
		return nil, fmt.Errorf("filter %q: %w", filter, err)
	}
	return h, nil
}
