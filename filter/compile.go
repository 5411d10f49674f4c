package filter

import (
	"fmt"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// Compile compiles a tcpdump/pcap-filter expression for Ethernet frames
// with libpcap (optimized, as tcpdump does). An empty expression matches
// everything. Errors carry libpcap's own message.
func Compile(expr string, snaplen int) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return []bpf.RawInstruction{{Op: 0x06, K: uint32(snaplen)}}, nil // ret #snaplen
	}
	insns, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %v", expr, err)
	}
	out := make([]bpf.RawInstruction, len(insns))
	for i, in := range insns {
		out[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return out, nil
}
