package main

import (
	"errors"
	"net"
)

// validStatus checks --status before any work (a bad value once ran the
// whole scan without a status line).
func validStatus(mode string) error {
	switch mode {
	case "auto", "text", "json", "none":
		return nil
	}
	return usageError("--status %q: use auto (text on a terminal), text, json or none", mode)
}

// unicastMAC refuses a next hop no frame can be addressed to: all zeros,
// broadcast or multicast (the group bit), which the switch would flood or
// drop, and whose replies would never come back.
func unicastMAC(mac net.HardwareAddr) error {
	switch {
	case mac.String() == "00:00:00:00:00:00":
		return errors.New("the zero address is no next hop; give the router's MAC (ip neigh)")
	case mac[0]&1 != 0:
		return errors.New("a broadcast or multicast address is no next hop; give the router's unicast MAC (ip neigh)")
	}
	return nil
}
