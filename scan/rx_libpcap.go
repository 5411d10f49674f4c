package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/xdpscan/xdpscan/internal/libpcap"
	"github.com/xdpscan/xdpscan/targets"
)

// pcapRx is the libpcap receive path, the baseline users compare XDP with:
// replies are copied to user space by the kernel's TPACKET ring, filtered by
// a classic BPF filter, decoded by gopacket and validated in Go. Nothing is
// consumed: the scanner's kernel still sees every SYN-ACK and answers RST,
// as it does for masscan and zmap.
type pcapRx struct {
	handle *pcap.Handle
	cfg    Config
	// Go-side dedup, the same exact set as behind the XDP path's kernel
	// table; here it is the only filter.
	seen                    *seenSet
	badCookie               uint64
	kernelDrops, ifaceDrops uint64
}

func openPcapRx(cfg Config) (*pcapRx, error) {
	filter := fmt.Sprintf("tcp and dst host %s and dst portrange %d-%d and (tcp[tcpflags] & (tcp-syn|tcp-rst) != 0)",
		cfg.Path.Src, cfg.SportLo, cfg.SportHi)
	h, err := libpcap.Open(cfg.Path.Iface, 128, filter)
	if err != nil {
		return nil, err
	}
	return &pcapRx{handle: h, cfg: cfg, seen: newSeenSet(cfg.Targets, cfg.Ports)}, nil
}

// run reads until ctx is done, then until the capture buffer is empty.
func (r *pcapRx) run(ctx context.Context, progress *Progress, emit func(Result)) error {
	var (
		eth layers.Ethernet
		ip  layers.IPv4
		tcp layers.TCP
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip, &tcp)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	src := r.cfg.Path.Src.As4()
	for {
		data, ci, err := r.handle.ZeroCopyReadPacketData()
		if errors.Is(err, pcap.NextErrorTimeoutExpired) {
			if ctx.Err() != nil {
				break // drained: a whole timeout without packets after the stop
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("libpcap read: %w", err)
		}
		if parser.DecodeLayers(data, &decoded) != nil || len(decoded) < 3 {
			continue
		}
		target := [4]byte(ip.SrcIP.To4())
		c := r.cfg.Key.Cookie4(src, target, 6, uint16(tcp.DstPort), uint16(tcp.SrcPort))
		var state State
		switch {
		case tcp.SYN && tcp.ACK && !tcp.RST && tcp.Ack-1 == c:
			state = StateOpen
		case tcp.RST && (tcp.Ack-1 == c || tcp.Ack == c):
			state = StateClosed
		default:
			r.badCookie++
			continue
		}
		if !r.seen.admit(netip.AddrFrom4(target), targets.ProtoTCP, uint16(tcp.SrcPort)) {
			continue
		}
		if state == StateOpen {
			progress.Open.Add(1)
		} else {
			progress.Closed.Add(1)
		}
		progress.Replies.Add(1)
		reason := "syn-ack"
		if state == StateClosed {
			reason = "reset"
		}
		emit(Result{Addr: netip.AddrFrom4(target), Port: uint16(tcp.SrcPort), Proto: "tcp", State: state, Reason: reason, TTL: ip.TTL, Time: ci.Timestamp})
	}
	if st, err := r.handle.Stats(); err == nil {
		r.kernelDrops, r.ifaceDrops = uint64(st.PacketsDropped), uint64(st.PacketsIfDropped)
	}
	return nil
}

func (r *pcapRx) close() { r.handle.Close() }
