package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/transmit"
)

// FloodOptions is one bounded flood: the same frame Count times, in
// sendmmsg batches of transmit.SocketBatch, as fast as the link takes them.
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
	tx, err := transmit.NewSocket(o.Iface)
	if err != nil {
		return FloodResult{}, err
	}
	defer tx.Close()
	var lens [transmit.SocketBatch]int
	for i := range lens {
		lens[i] = copy(tx.Buffer(i), o.Frame)
	}
	start := time.Now()
	for left := o.Count; left > 0 && ctx.Err() == nil; {
		n := min(left, transmit.SocketBatch)
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

// FloodXDP sends o.Frame o.Count times from the kernel: a program that
// answers XDP_TX, run by BPF_PROG_RUN in live-frames mode (Linux 5.18) with
// the frame as input, so no socket buffer is built on the sending side and
// the frames reach the peer as XDP frames, as from a NIC: on veth, the
// receiving end's XDP program sees them before any skb exists. The peer
// must have NAPI enabled (a native XDP program or GRO on), or veth drops
// every frame.
func FloodXDP(ctx context.Context, o FloodOptions) (FloodResult, error) {
	if len(o.Frame) == 0 || len(o.Frame) > 128 {
		return FloodResult{}, fmt.Errorf("flood: frame of %d bytes: use 1 to 128", len(o.Frame))
	}
	ifc, err := net.InterfaceByName(o.Iface)
	if err != nil {
		return FloodResult{}, fmt.Errorf("flood from XDP on %s: %w", o.Iface, err)
	}
	// XDP_TX for the frames BPF_PROG_RUN hands it on o.Iface; XDP_PASS for
	// anything else, as it is also attached to lo (below).
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpscan_flood", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2),                    // XDP_PASS
			asm.LoadMem(asm.R2, asm.R1, 12, asm.Word), // ingress_ifindex
			asm.JNE.Imm(asm.R2, int32(ifc.Index), "out"),
			asm.Mov.Imm(asm.R0, 3), // XDP_TX
			asm.Return().WithSymbol("out"),
		}})
	if err != nil {
		return FloodResult{}, fmt.Errorf("load flood program: %w", err)
	}
	defer prog.Close()
	// Every BPF_PROG_RUN of an XDP program adds it to the kernel's XDP
	// dispatcher and removes it after, each a synchronize_rcu (milliseconds)
	// unless the program is attached somewhere already: attached to lo,
	// where it passes everything, a run costs no wait.
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return FloodResult{}, fmt.Errorf("flood from XDP: %w", err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: lo.Index, Flags: link.XDPGenericMode})
	if err != nil {
		return FloodResult{}, fmt.Errorf("flood from XDP: attach the flood program to lo: %w", err)
	}
	defer l.Close()
	counters, err := netdev.Open(o.Iface)
	if err != nil {
		return FloodResult{}, err
	}
	defer counters.Close()
	before, err := counters.Read()
	if err != nil {
		return FloodResult{}, err
	}
	xctx := loader.XDPMd{DataEnd: uint32(len(o.Frame)), IngressIfindex: uint32(ifc.Index)}
	start := time.Now()
	var sent uint64
	for sent < o.Count && ctx.Err() == nil {
		n := min(o.Count-sent, 1<<14)
		if _, err := prog.Run(&ebpf.RunOptions{Data: o.Frame, Context: xctx, Repeat: uint32(n),
			Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, BatchSize: 64}); err != nil {
			return FloodResult{}, fmt.Errorf("flood from XDP on %s (BPF_PROG_RUN live frames): %w", o.Iface, err)
		}
		sent += n
	}
	r := FloodResult{Sent: sent, ElapsedS: time.Since(start).Seconds()}
	if r.ElapsedS > 0 {
		r.PPS = float64(r.Sent) / r.ElapsedS
	}
	// The kernel reports no transmit failure to BPF_PROG_RUN's caller; a
	// veth counts what its peer took as transmitted, so a shortfall is
	// frames dropped (no NAPI on the peer, or its ring full).
	after, err := counters.Read()
	if err != nil {
		return r, err
	}
	if d := after.Sub(before); counters.IsVeth() && d.TxPackets < sent {
		return r, transmit.PeerNeedsNAPI("flood from XDP", o.Iface,
			fmt.Sprintf("%d of %d frames (tx_dropped +%d)", d.TxPackets, sent, d.TxDropped), "flood from a socket: --gen socket")
	}
	return r, nil
}
