package main

import (
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// attachFlags checks the -i and --mode flags of cmd, a command that
// attaches XDP to an interface, and returns the mode.
func attachFlags(cmd, iface, modeStr string) (loader.Mode, error) {
	if iface == "" {
		return "", usageError("%s: -i IFACE is required; see `ip link` for the interfaces", cmd)
	}
	if err := netdev.RequireUp(iface); err != nil {
		return "", usageError("%s: %v", cmd, err)
	}
	mode, err := loader.ParseMode(modeStr)
	if err != nil {
		return "", usageError("%s: %v", cmd, err)
	}
	return mode, nil
}
