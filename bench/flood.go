package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/engine"
)

// FloodOptions is one bounded flood: the same frame Count times, in
// sendmmsg batches of engine.BatchSize, as fast as the link takes them.
// It is the bench's packet generator (instead of netsniff-ng's trafgen:
// one sendmmsg loop sends more per CPU here, has no once-a-second bursts
// when limited, and needs no extra package) and the "bare sendmmsg loop"
// the scanner's send path is compared with.
type FloodOptions struct {
	Iface string
	Count uint64
	Frame []byte
}

// FloodResult is what a flood achieved.
type FloodResult struct {
	Sent     uint64  `json:"sent"`
	ElapsedS float64 `json:"elapsed_s"`
	PPS      float64 `json:"pps"`
}

// Flood sends o.Frame o.Count times on o.Iface in the current namespace.
func Flood(ctx context.Context, o FloodOptions) (FloodResult, error) {
	if len(o.Frame) == 0 || len(o.Frame) > 128 {
		return FloodResult{}, fmt.Errorf("flood: frame of %d bytes: use 1 to 128", len(o.Frame))
	}
	tx, err := engine.NewTransmitter(o.Iface)
	if err != nil {
		return FloodResult{}, err
	}
	defer tx.Close()
	var lens [engine.BatchSize]int
	for i := range lens {
		lens[i] = copy(tx.Buffer(i), o.Frame)
	}
	start := time.Now()
	for left := o.Count; left > 0 && ctx.Err() == nil; {
		n := min(left, engine.BatchSize)
		if err := tx.Send(ctx, lens[:n]); err != nil && ctx.Err() == nil {
			return FloodResult{}, err
		}
		left -= n
	}
	r := FloodResult{Sent: tx.Sent.Load(), ElapsedS: time.Since(start).Seconds()}
	if r.ElapsedS > 0 {
		r.PPS = float64(r.Sent) / r.ElapsedS
	}
	return r, nil
}

// FloodFrame builds the flood's frame: "udp" is a minimum-size (60-byte)
// UDP datagram to dst port 9 (discard); "syn" is a TCP SYN to dst port 80,
// the size and shape of a scan probe.
func FloodFrame(kind string, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Id: 1}
	var l4 []gopacket.SerializableLayer
	switch kind {
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: 40000, DstPort: 9}
		_ = udp.SetNetworkLayerForChecksum(ip)
		l4 = []gopacket.SerializableLayer{udp, gopacket.Payload(make([]byte, 18))}
	case "syn":
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 1, Window: 1024}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = []gopacket.SerializableLayer{tcp}
	default:
		return nil, fmt.Errorf("flood frame %q: use udp or syn", kind)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, append([]gopacket.SerializableLayer{eth, ip}, l4...)...); err != nil {
		return nil, fmt.Errorf("build %s frame: %w", kind, err)
	}
	return buf.Bytes(), nil
}
