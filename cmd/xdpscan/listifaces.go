package main

import (
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"golang.org/x/sys/unix"
)

// listInterfaces is capture -D: tcpdump's numbered list with its state
// words, and for each interface what XDP it can take (native needs the
// driver; generic works everywhere) and the XDP program attached now.
func listInterfaces(w io.Writer) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("-D: list interfaces: %w", err)
	}
	feats := netdev.XDPFeatures()
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
		case ok && f&netdev.XDPActBasic != 0:
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
