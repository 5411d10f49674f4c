package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/xdpscan/xdpscan/internal/nmapsvc"
)

// nmapServicesPath is nmap's port frequency table, read (never copied
// into this repository) for --top-ports.
var nmapServicesPath = nmapsvc.File

// topPorts is the n most frequent ports of proto ("tcp" or "udp") in the
// nmap-services file at path, in ascending port order: the ports nmap
// --top-ports n scans (TestTopPortsMatchNmap).
func topPorts(path, proto string, n int) ([]uint16, error) {
	t, err := nmapsvc.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("nmap's frequency table %s is missing: install nmap (apt-get install nmap), or give -p PORTS", path)
	}
	if err != nil {
		return nil, err
	}
	ports, err := t.Top(proto, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ports, nil
}
