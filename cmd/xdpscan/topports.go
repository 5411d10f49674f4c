package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
)

// nmapServicesPath is nmap's port frequency table, read (never copied
// into this repository) for --top-ports.
var nmapServicesPath = "/usr/share/nmap/nmap-services"

// topPorts is the n most frequent ports of proto ("tcp" or "udp") in the
// nmap-services file at path, in ascending port order: the ports nmap
// --top-ports n scans (TestTopPortsMatchNmap).
func topPorts(path, proto string, n int) ([]uint16, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("nmap's frequency table %s is missing: install nmap (apt-get install nmap), or give -p PORTS", path)
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	type entry struct {
		port uint16
		freq float64
	}
	var all []entry
	sc := bufio.NewScanner(fh)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) < 3 {
			continue
		}
		num, pr, ok := strings.Cut(fields[1], "/")
		if !ok || pr != proto {
			continue
		}
		port, err1 := strconv.ParseUint(num, 10, 16)
		freq, err2 := strconv.ParseFloat(fields[2], 64)
		if err1 != nil || err2 != nil || port == 0 {
			return nil, fmt.Errorf("%s:%d: not an nmap-services line (name port/proto frequency)", path, line)
		}
		all = append(all, entry{uint16(port), freq})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if n > len(all) {
		return nil, fmt.Errorf("%s lists %d %s ports, fewer than %d", path, len(all), proto, n)
	}
	// As nmap: by frequency, ties in the file's (port) order.
	sort.SliceStable(all, func(i, j int) bool { return all[i].freq > all[j].freq })
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = all[i].port
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	return ports, nil
}
