// Package nmapsvc reads nmap's nmap-services table: the service name of
// each port (for the nmap-format outputs) and how often each port is
// found open (for --top-ports). The file is read where nmap installed it,
// never copied into this repository (nmap's licence).
package nmapsvc

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// File is where Debian's nmap package puts the table.
const File = "/usr/share/nmap/nmap-services"

type key struct {
	proto string
	port  uint16
}

type entry struct {
	port uint16
	freq float64
}

// Table is one nmap-services file. The zero Table names no port.
type Table struct {
	names map[key]string
	// byProto lists each protocol's ports in the file's order, with
	// their frequency.
	byProto map[string][]entry
}

// Load reads a file in nmap-services' format: "name port/proto frequency
// # comment", one a line (about 27,000 lines, 10 ms).
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &Table{names: map[key]string{}, byProto: map[string][]entry{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) < 2 {
			continue
		}
		portStr, proto, ok := strings.Cut(fields[1], "/")
		port, err := strconv.ParseUint(portStr, 10, 16)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not PORT/PROTO (an nmap-services line is: name port/proto frequency)", path, line, fields[1])
		}
		var freq float64
		if len(fields) >= 3 {
			if freq, err = strconv.ParseFloat(fields[2], 64); err != nil {
				return nil, fmt.Errorf("%s:%d: frequency %q is not a number", path, line, fields[2])
			}
		}
		k := key{proto, uint16(port)}
		if _, dup := t.names[k]; !dup {
			t.names[k] = fields[0]
		}
		if port != 0 {
			t.byProto[proto] = append(t.byProto[proto], entry{uint16(port), freq})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Name is the service nmap calls proto/port ("tcp", "udp"), "" if none
// (or t is nil).
func (t *Table) Name(proto string, port uint16) string {
	if t == nil {
		return ""
	}
	return t.names[key{proto, port}]
}

// Top is the n most frequent ports of proto, in ascending port order: the
// ports nmap --top-ports n scans (ties in the file's order, as nmap).
func (t *Table) Top(proto string, n int) ([]uint16, error) {
	all := t.byProto[proto]
	if n > len(all) {
		return nil, fmt.Errorf("nmap-services lists %d %s ports, fewer than %d", len(all), proto, n)
	}
	all = append([]entry(nil), all...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].freq > all[j].freq })
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = all[i].port
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	return ports, nil
}
