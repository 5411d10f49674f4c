package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The netdev generic netlink family (include/uapi/linux/netdev.h, Linux 6.3).
const (
	netdevCmdDevGet       = 1
	netdevAttrIfindex     = 1
	netdevAttrXDPFeatures = 3
	netdevXDPActBasic     = 1 // the driver runs XDP programs itself (native mode)
)

// xdpFeatures reads each interface's XDP features from the netdev family:
// ifindex to the feature bits. nil when the kernel has no such family. The
// dump is read here (a plain netlink socket, x/sys/unix's parsers):
// vishvananda/netlink's request returns only its first device.
func xdpFeatures() map[int]uint64 {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	req := make([]byte, unix.SizeofNlMsghdr+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], fam.ID)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1) // seq
	req[16], req[17] = netdevCmdDevGet, 1     // genlmsghdr: cmd, version
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil
	}
	out := map[int]uint64{}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return out
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return out
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR {
				return out
			}
			if len(m.Data) < 4 {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m.Data[4:])
			if err != nil {
				continue
			}
			var idx int
			var feat uint64
			for _, a := range attrs {
				switch {
				case a.Attr.Type == netdevAttrIfindex && len(a.Value) >= 4:
					idx = int(binary.NativeEndian.Uint32(a.Value))
				case a.Attr.Type == netdevAttrXDPFeatures && len(a.Value) >= 8:
					feat = binary.NativeEndian.Uint64(a.Value)
				}
			}
			if idx > 0 {
				out[idx] = feat
			}
		}
	}
}

// listInterfaces is capture -D: tcpdump's numbered list with its state
// words, and for each interface what XDP it can take (native needs the
// driver; generic works everywhere) and the XDP program attached now.
func listInterfaces(w io.Writer) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("-D: list interfaces: %w", err)
	}
	feats := xdpFeatures()
	for i, l := range links {
		a := l.Attrs()
		var state []string
		if a.Flags&net.FlagUp != 0 {
			state = append(state, "Up")
		}
		if a.RawFlags&unix.IFF_RUNNING != 0 {
			state = append(state, "Running")
		}
		if a.Flags&net.FlagLoopback != 0 {
			state = append(state, "Loopback")
		}
		if a.RawFlags&unix.IFF_PROMISC != 0 {
			state = append(state, "Promiscuous")
		}
		if len(state) == 0 {
			state = []string{"none"}
		}
		modes := "generic"
		switch f, ok := feats[a.Index]; {
		case feats == nil:
			modes = "generic (native: unknown before Linux 6.3)"
		case ok && f&netdevXDPActBasic != 0:
			modes = "native, generic"
		}
		attached := "none"
		if x := a.Xdp; x != nil && x.Attached {
			attached = fmt.Sprintf("prog %d (%s)", x.ProgId, xdpAttachMode(x.AttachMode))
		}
		fmt.Fprintf(w, "%d.%s [%s] ifindex %d, %s, XDP: %s; attached: %s\n", i+1, a.Name, strings.Join(state, ", "),
			a.Index, l.Type(), modes, attached)
	}
	return nil
}

func xdpAttachMode(m uint32) string {
	switch m {
	case 1: // XDP_ATTACHED_DRV
		return "native"
	case 2: // XDP_ATTACHED_SKB
		return "generic"
	case 3: // XDP_ATTACHED_HW
		return "offload"
	case 4: // XDP_ATTACHED_MULTI
		return "several"
	}
	return fmt.Sprint(m)
}
