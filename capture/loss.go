package capture

import (
	"fmt"

	"github.com/xdpscan/xdpscan/internal/netdev"
)

// Loss is how many packets were lost where, stage by stage, over the
// capture (--stats-json "loss", the summary, the pcapng statistics
// block's comment).
type Loss struct {
	// NICRxDropped and NICRxMissed are the interface's stats64 rx_dropped
	// and rx_missed_errors growth over the capture: frames the NIC, the
	// driver or the kernel dropped on receive (on veth: frames the peer
	// could not queue to this end), none of which any capture could see.
	NICRxDropped uint64 `json:"nic_rx_dropped"`
	NICRxMissed  uint64 `json:"nic_rx_missed_errors"`
	// Ring is the matched packets the kernel could not put in the ring
	// (reserve failures: the reader was behind).
	Ring uint64 `json:"ring"`
	// Writer is the matched packets read but not written (write errors, -c).
	Writer uint64 `json:"writer"`
	// NoMACHeader is the packets that reached the capture at TC ingress
	// without their MAC header, after a generic XDP program with
	// xdp.frags (kernel 6.18; bpf/include/skbmac.h): a filter expression
	// reads a frame from its MAC header, so these were neither filtered
	// nor written. With no filter expression they are written whole (the
	// MAC header read from where the kernel keeps it) and not counted
	// here.
	NoMACHeader uint64 `json:"no_mac_header"`
	// NICUnavailable says the interface counters could not be read (then
	// the NIC figures are 0, not measured).
	NICUnavailable string `json:"nic_unavailable,omitempty"`
	// XDPAhead: per interface, what an XDP program attached before the
	// capture dropped, sent back or redirected (xdpahead.go).
	XDPAhead []XDPAhead `json:"xdp_ahead,omitempty"`
}

// String is the summary's line.
func (l Loss) String() string {
	s := fmt.Sprintf("lost by stage: NIC/driver %d (rx_dropped %d, rx_missed_errors %d), ring %d, writer %d",
		l.NICRxDropped+l.NICRxMissed, l.NICRxDropped, l.NICRxMissed, l.Ring, l.Writer)
	if l.NICUnavailable != "" {
		s += " (NIC counters unavailable: " + l.NICUnavailable + ")"
	}
	if l.NoMACHeader > 0 {
		s += fmt.Sprintf("; not filtered, no MAC header %d (a generic XDP program with xdp.frags ran ahead of the capture at TC ingress: "+
			"capture with no filter expression, or with --rx pcap, to get them)", l.NoMACHeader)
	}
	for _, a := range l.XDPAhead {
		s += "; " + a.String()
	}
	return s
}

// nicLoss measures an interface's receive drops over a capture.
type nicLoss struct {
	link   *netdev.Link
	before netdev.Counters
	err    error
}

func startNICLoss(iface string) *nicLoss {
	n := &nicLoss{}
	if n.link, n.err = netdev.Open(iface); n.err == nil {
		if n.before, n.err = n.link.Read(); n.err != nil {
			n.link.Close()
			n.link = nil
		}
	}
	return n
}

// finish fills st.Loss.
func (n *nicLoss) finish(st *Stats) {
	st.Loss = Loss{Ring: st.RingLost, Writer: st.WriterLost, XDPAhead: st.Loss.XDPAhead}
	st.Loss.NoMACHeader = st.Counters.NoMAC
	if n.link != nil {
		defer n.link.Close()
		var after netdev.Counters
		if after, n.err = n.link.Read(); n.err == nil {
			d := after.Sub(n.before)
			st.Loss.NICRxDropped, st.Loss.NICRxMissed = d.RxDropped, d.RxMissedErrors
		}
	}
	if n.err != nil {
		st.Loss.NICUnavailable = n.err.Error()
	}
}
