package loader

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/netdev"
)

// Mode is how an XDP program is attached to an interface.
type Mode string

const (
	// ModeAuto lets the kernel choose (native where the driver supports it,
	// generic otherwise), except on veth, where it picks generic: veth's
	// native XDP takes frames through a 256-slot ring drained by NAPI on the
	// sending CPU, which bursts of SYN-ACK retransmissions overflow (97.8% of
	// the replies found at 82k probes/s native, 100% generic, on the testbed).
	ModeAuto Mode = "auto"
	// ModeNative runs the program in the driver, before any allocation.
	ModeNative Mode = "native"
	// ModeGeneric runs it after the kernel has built an skb; it works on
	// every interface, more slowly.
	ModeGeneric Mode = "generic"
)

// ParseMode accepts "auto", "native" (or "driver") and "generic" (or "skb").
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "auto":
		return ModeAuto, nil
	case "native", "driver", "drv":
		return ModeNative, nil
	case "generic", "skb":
		return ModeGeneric, nil
	}
	return "", fmt.Errorf("unknown XDP mode %q: use auto, native or generic", s)
}

func (m Mode) flags() link.XDPAttachFlags {
	switch m {
	case ModeNative:
		return link.XDPDriverMode
	case ModeGeneric:
		return link.XDPGenericMode
	}
	return 0
}

// Attachment is an XDP program attached to one interface through a bpf_link.
type Attachment struct {
	Interface string
	Ifindex   int
	// Mode is the mode the kernel reports for the attached program, which
	// for ModeAuto says whether the driver took it natively.
	Mode Mode
	link link.Link
}

// Attach attaches prog to the interface named iface, in the current network
// namespace.
func Attach(prog *ebpf.Program, iface string, mode Mode) (*Attachment, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("attach XDP to %s: no such interface; see --list-interfaces or `ip link`", iface)
	}
	flags := mode.flags()
	if mode == ModeAuto && netdev.IsVeth(iface) {
		flags = ModeGeneric.flags()
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: flags})
	if err != nil {
		return nil, attachError(iface, mode, err)
	}
	a := &Attachment{Interface: iface, Ifindex: ifc.Index, Mode: mode, link: l}
	if got, err := AttachedMode(iface); err == nil && got != "" {
		a.Mode = got
	}
	return a, nil
}

// Close detaches the program. It is safe to call more than once.
func (a *Attachment) Close() error {
	if a == nil || a.link == nil {
		return nil
	}
	err := a.link.Close()
	a.link = nil
	if err != nil {
		return fmt.Errorf("detach XDP from %s: %w", a.Interface, err)
	}
	return nil
}

// AttachedMode reports the mode of the XDP program attached to iface as the
// kernel sees it, or "" when none is attached.
func AttachedMode(iface string) (Mode, error) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return "", fmt.Errorf("look up %s: %w", iface, err)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached {
		return "", nil
	}
	switch x.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return ModeNative, nil
	case nl.XDP_ATTACHED_SKB:
		return ModeGeneric, nil
	case nl.XDP_ATTACHED_HW:
		return "offload", nil
	}
	return "multi", nil
}

func attachError(iface string, mode Mode, err error) error {
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return fmt.Errorf("attach XDP to %s: another XDP program is already attached (`ip link show dev %s` names it; "+
			"`bpftool net show dev %s` says whether a process holds it through a bpf_link, as another xdpscan does); "+
			"xdpscan never replaces someone else's program: stop the process that holds it, or `ip link set dev %s xdp off` "+
			"if it was attached that way (a bpf_link ignores that): %w",
			iface, iface, iface, iface, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("attach XDP to %s: not permitted: attaching XDP needs CAP_NET_ADMIN "+
			"(run as root, or `setcap cap_bpf,cap_net_admin,cap_net_raw+ep` on the binary): %w", iface, err)
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL) && mode == ModeNative:
		return fmt.Errorf("attach XDP to %s in %s mode: the driver does not support it; use --mode generic: %w",
			iface, mode, err)
	}
	return fmt.Errorf("attach XDP to %s (%s mode): %w", iface, mode, err)
}
