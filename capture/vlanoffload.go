package capture

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/kfloor"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// ethFlagRxVLAN is ETHTOOL_GFLAGS's ETH_FLAG_RXVLAN: the NIC takes the
// 802.1Q tag out of received frames (rx-vlan-offload, NETIF_F_HW_VLAN_CTAG_RX).
const (
	ethtoolGFlags = 0x25
	ethFlagRxVLAN = 1 << 8
)

// attachMode is the mode the program will be attached in: mode, or for
// auto what loader.Attach gets (generic on veth; native where the driver
// runs XDP itself, by netdev's features; generic otherwise).
func attachMode(iface string, mode loader.Mode, feat netdev.Features) loader.Mode {
	if mode != loader.ModeAuto && mode != "" {
		return mode
	}
	if netdev.IsVeth(iface) || feat.XDP&netdev.XDPActBasic == 0 {
		return loader.ModeGeneric
	}
	return loader.ModeNative
}

// deviceFeatures are iface's netdev features, zero when unknown.
func deviceFeatures(iface string) (int, netdev.Features) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return 0, netdev.Features{}
	}
	return ifc.Index, netdev.DeviceFeatures()[ifc.Index]
}

// xdpLoad sets how the capture program for iface, attached in mode, is
// loaded:
//   - VLANMetaIfindex, in native mode on a driver that implements
//     bpf_xdp_metadata_rx_vlan_tag (netdev's rx metadata features: veth
//     and mlx5 do, on Linux 6.8): the program is bound to the device and
//     gets the outer VLAN tags the driver took out of frames;
//   - NoFrags in generic mode: there the kernel hands a program without
//     xdp.frags a linear frame (it linearizes a larger one), while after
//     one with it the skb goes on without its MAC header (kernel 6.18:
//     a TC program after it sees frames start at the IP header), which
//     broke a second capture, or a scan, beside it at TC.
func xdpLoad(lc *loader.CaptureConfig, iface string, mode loader.Mode) {
	if iface == "" {
		return
	}
	idx, feat := deviceFeatures(iface)
	switch attachMode(iface, mode, feat) {
	case loader.ModeGeneric:
		lc.NoFrags = true
	case loader.ModeNative:
		if idx != 0 && feat.RxMetadata&netdev.XDPRxMetadataVLANTag != 0 && feat.XDP&netdev.XDPActBasic != 0 {
			lc.VLANMetaIfindex = idx
		}
	}
}

// vlanStripNotice is what to tell the user when XDP on iface, attached
// in mode, cannot see VLAN tags the NIC takes out of frames
// (rx-vlan-offload): the tag is in the receive descriptor, then the skb's
// metadata, which tcpdump reads and XDP does not, except through the
// driver's bpf_xdp_metadata_rx_vlan_tag in native mode (meta: the program
// does that). Such a frame reaches the filter untagged, so `vlan` misses
// it where tcpdump matches. "" when nothing is lost: meta; the offload
// off; or veth, which hands XDP a frame sent with its tag in place as it
// was sent (a tag its peer's sender kept in metadata is another matter:
// native mode reads it through the kfunc, generic mode cannot).
func vlanStripNotice(iface string, mode loader.Mode, meta bool) string {
	if meta || !rxVLANOffload(iface) {
		return ""
	}
	veth := netdev.IsVeth(iface)
	switch {
	case mode == loader.ModeNative && !veth:
		return fmt.Sprintf("xdpscan: %s strips VLAN tags in the NIC (rx-vlan-offload on) and its driver does not give them to XDP "+
			"(bpf_xdp_metadata_rx_vlan_tag, Linux 6.8): 'vlan' filters miss those frames and other filters see them untagged, where tcpdump sees the tag; "+
			"for tcpdump's view, turn the offload off (ethtool -K %s rxvlan off)", iface, iface)
	case mode == loader.ModeNative:
		return fmt.Sprintf("xdpscan: this kernel gives native XDP on %s no VLAN tag its peer's sender kept out of the frame "+
			"(bpf_xdp_metadata_rx_vlan_tag: Linux 6.8): such frames are seen untagged, where tcpdump sees the tag", iface)
	case !veth:
		return fmt.Sprintf("xdpscan: %s strips VLAN tags in the NIC (rx-vlan-offload on), and generic XDP runs after that: "+
			"'vlan' filters miss those frames and other filters see them untagged, where tcpdump sees the tag; "+
			"for tcpdump's view, --mode native (where the driver gives XDP the tag) or turn the offload off (ethtool -K %s rxvlan off)", iface, iface)
	}
	return ""
}

// rxVLANOffload says whether iface's NIC takes VLAN tags out of received
// frames (ETHTOOL_GFLAGS), false when it cannot tell.
func rxVLANOffload(iface string) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: ethtoolGFlags}
	var req [40]byte // struct ifreq: the name, then ifr_data
	copy(req[:unix.IFNAMSIZ-1], iface)
	*(*uintptr)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = uintptr(unsafe.Pointer(&value))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		return false
	}
	return value.data&ethFlagRxVLAN != 0
}

// loadCapture loads the XDP capture program as lc says; when the
// device-bound load that reads VLAN tags from the driver is refused (a
// driver or kernel that advertises the kfunc yet will not bind), it loads
// the program unbound instead and says what is lost, rather than not
// capturing at all.
func (cfg Config) loadCapture(lc loader.CaptureConfig) (*loader.Capture, error) {
	c, err := loader.LoadCapture(lc)
	if err == nil || lc.VLANMetaIfindex == 0 {
		return c, err
	}
	lc.VLANMetaIfindex = 0
	c, err2 := loader.LoadCapture(lc)
	if err2 != nil {
		return nil, err
	}
	cfg.notice(fmt.Sprintf("xdpscan: the capture program could not be bound to the device to read the VLAN tags its driver takes out "+
		"of frames (%v): VLAN tags held in metadata are not seen, where tcpdump sees them", err))
	return c, nil
}

// ingressAt is where received packets are taken on iface.
type ingressAt int

const (
	// ingressXDP: the XDP program, in the mode asked for.
	ingressXDP ingressAt = iota
	// ingressBeside: TC ingress, after an XDP program already attached
	// (someone else's, another capture's or a scan's), which an XDP
	// attachment would refuse; tcx chains with any other.
	ingressBeside
	// ingressSkb: TC ingress where --mode auto would attach XDP in
	// generic mode (veth; a driver without native XDP). There every frame
	// is an skb before any program sees it, and generic XDP first gives
	// it a new head with 256 bytes of headroom (pskb_expand_head: a
	// kmalloc and a copy per frame: perf finds it, and an XDP_PASS
	// program adds 140 ns of the flooded CPU per packet here), which TC, like tcpdump's tap, does not. TC also reads
	// the VLAN tag the kernel moved into metadata, which generic XDP
	// cannot. --mode generic still attaches XDP.
	ingressSkb
)

// ingressFor decides ingressAt for iface, the --mode and --egress-hook
// asked, and the filter's code: frameView is code compiled as for a
// savefile (no CAP_NET_RAW for a live libpcap handle), which expects an
// outer VLAN tag in the frame, where generic XDP still sees it and TC
// ingress no longer does (the kernel has moved it into metadata): such a
// filter keeps generic XDP. So does a kernel without tcx (Linux 6.6):
// a clsact filter of one fixed priority would collide with a second
// capture's, and outlives a killed process, where an XDP or tcx link
// detaches itself.
func ingressFor(iface string, mode loader.Mode, frameView bool, hook loader.EgressHook) ingressAt {
	if m, err := loader.AttachedMode(iface); err == nil && m != "" {
		return ingressBeside
	}
	if frameView || !tcxHook(hook) {
		return ingressXDP
	}
	feat, known := netdev.Features{}, false
	if ifc, err := net.InterfaceByName(iface); err == nil {
		feat, known = netdev.DeviceFeatures()[ifc.Index]
	}
	if skbIngress(mode, netdev.IsVeth(iface), feat, known) {
		return ingressSkb
	}
	return ingressXDP
}

// attachError says which way received packets were to be taken when
// their TC ingress attachment failed, and the way out: generic XDP where
// TC was only chosen for skbs, none beside a program that holds the XDP
// hook (but to detach it).
func (a ingressAt) attachError(iface string, err error) error {
	if a == ingressSkb {
		return fmt.Errorf("capture received packets on %s at TC ingress (--mode auto on a device whose XDP would be generic): %w; "+
			"--mode generic takes them at generic XDP instead", iface, err)
	}
	return fmt.Errorf("capture received packets on %s at TC ingress, beside the XDP program already attached: %w", iface, err)
}

// tcxHook says whether a TC program attached with hook goes on tcx.
func tcxHook(hook loader.EgressHook) bool {
	if hook != "" && hook != loader.HookAuto && hook != loader.HookTCX {
		return false
	}
	missing, err := kfloor.Missing(kfloor.TCX)
	return err == nil && len(missing) == 0
}

// savefileAtTCNotice is what to tell a user whose filter, compiled as for
// a savefile, runs at TC ingress beside an XDP program already attached:
// the outer VLAN tag is no longer in the frame there.
const savefileAtTCNotice = "xdpscan: the filter is compiled as for a savefile (no CAP_NET_RAW) and runs at TC ingress, where the kernel has taken " +
	"the outer VLAN tag out of the frame: 'vlan' filters miss tagged frames (grant CAP_NET_RAW for tcpdump's live semantics)"

// skbIngress says whether --mode auto would attach generic XDP, and so
// whether received packets are better taken at TC ingress: on veth
// (attachMode), or on a device whose netdev features are known (Linux
// 6.3) and name no native XDP. Unknown features (an older kernel) leave
// the choice to the kernel's XDP attach, which takes native mode where
// the driver has it.
func skbIngress(mode loader.Mode, veth bool, feat netdev.Features, known bool) bool {
	if mode != loader.ModeAuto && mode != "" {
		return false
	}
	return veth || known && feat.XDP&netdev.XDPActBasic == 0
}

// hook is how --stats-json and the summary name the TC ingress hook h
// for a, after the hook's own name.
func (a ingressAt) hook(h loader.EgressHook) string {
	if a == ingressSkb {
		return string(h) + " ingress (--mode auto: frames reach this link as skbs, which generic XDP would copy first; --mode generic for XDP)"
	}
	return string(h) + " ingress, after the XDP program already attached"
}
