package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/targets"
)

// PairKey is one (address, protocol, port) a result line reports: what
// makes two lines the same pair.
type PairKey struct {
	Addr  netip.Addr
	Proto uint8
	Port  uint16
}

// KeyOf is the pair a result reports.
func KeyOf(r scan.Result) PairKey {
	return PairKey{Addr: r.Addr, Proto: protoNumber(r.Proto), Port: r.Port}
}

func protoNumber(name string) uint8 {
	switch name {
	case "tcp":
		return targets.ProtoTCP
	case "udp":
		return targets.ProtoUDP
	case "icmp":
		return targets.ProtoICMP
	}
	return 0
}

// ReadBack is what a results file already holds, for a resumed scan that
// appends to it.
type ReadBack struct {
	Pairs map[PairKey]struct{}
	// Whole is the length of the file up to its last complete line: a scan
	// killed mid-write can leave a torn line after it, which the resumed
	// scan cuts off before appending.
	Whole int64
	Size  int64
	Lines int
}

// Read reads a results file written in format (every format but xml
// and normal, which cannot be appended to: for grepable and json, the
// pairs a file holds). A line that is not a result, a
// header or a comment is an error: the file is not what the scan wrote.
func Read(r io.Reader, format string) (*ReadBack, error) {
	parse, err := lineParser(format)
	if err != nil {
		return nil, err
	}
	rb := &ReadBack{Pairs: map[PairKey]struct{}{}}
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("line %d is over 64 KiB: not a %s result", rb.Lines+1, format)
		}
		rb.Size += int64(len(line))
		if err == io.EOF {
			return rb, nil // a torn last line (or none): not counted
		}
		if err != nil {
			return nil, err
		}
		rb.Lines++
		rb.Whole = rb.Size
		text := bytes.TrimRight(line, "\r\n")
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		perr := parse(text, func(k PairKey) { rb.Pairs[k] = struct{}{} })
		if perr != nil {
			return nil, fmt.Errorf("line %d %q is not a %s result: %v", rb.Lines, truncate(text), format, perr)
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// lineParser returns the parser of one line of format: it calls pair
// with each pair the line holds (none for a header: csv's, or json's
// brackets).
func lineParser(format string) (func(line []byte, pair func(PairKey)) error, error) {
	one := func(parse func([]byte) (PairKey, bool, error)) func([]byte, func(PairKey)) error {
		return func(b []byte, pair func(PairKey)) error {
			k, ok, err := parse(b)
			if ok && err == nil {
				pair(k)
			}
			return err
		}
	}
	switch format {
	case "ndjson":
		return one(func(b []byte) (PairKey, bool, error) {
			if IsPartHeader(b) {
				return PairKey{}, false, nil
			}
			var v struct {
				IP    string `json:"ip"`
				Port  uint16 `json:"port"`
				Proto string `json:"proto"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return PairKey{}, false, err
			}
			return keyFrom(v.IP, v.Proto, strconv.Itoa(int(v.Port)))
		}), nil
	case "json": // masscan -oJ: "[", then objects separated by "," lines, then "]"
		return func(b []byte, pair func(PairKey)) error {
			switch string(bytes.TrimSpace(b)) {
			case "[", ",", "]":
				return nil
			}
			if IsPartHeader(bytes.TrimPrefix(b, []byte(","))) {
				return nil // a sharded scan's part, not a result
			}
			var v struct {
				IP    string `json:"ip"`
				Ports []struct {
					Port  *uint16 `json:"port"` // nil: no "port" key, not port 0
					Proto string  `json:"proto"`
				} `json:"ports"`
			}
			if err := json.Unmarshal(bytes.TrimPrefix(b, []byte(",")), &v); err != nil {
				return err
			}
			if len(v.Ports) == 0 {
				return fmt.Errorf("no ports")
			}
			for _, p := range v.Ports {
				if p.Port == nil {
					return fmt.Errorf("a port entry without \"port\"")
				}
				k, _, err := keyFrom(v.IP, p.Proto, strconv.Itoa(int(*p.Port)))
				if err != nil {
					return err
				}
				pair(k)
			}
			return nil
		}, nil
	case "list": // open tcp 80 198.18.0.1 1700000000
		return one(func(b []byte) (PairKey, bool, error) {
			f := strings.Fields(string(b))
			if len(f) != 5 {
				return PairKey{}, false, fmt.Errorf("want 5 fields")
			}
			return keyFrom(f[3], f[1], f[2])
		}), nil
	case "grepable":
		return parseGrepable, nil
	case "csv": // ip,port,proto,state,reason,from,ttl,ts (before: ip,port,proto,state,ttl,ts)
		return one(func(b []byte) (PairKey, bool, error) {
			if string(b) == csvHeader || string(b) == "ip,port,proto,state,ttl,ts" {
				return PairKey{}, false, nil
			}
			f := strings.Split(string(b), ",")
			if len(f) != 8 && len(f) != 6 {
				return PairKey{}, false, fmt.Errorf("want 8 fields (or 6, before the reason column)")
			}
			return keyFrom(f[0], f[2], f[1])
		}), nil
	case "human": // open    tcp 198.18.0.1:80 ttl=64 / up      icmp 198.18.0.1 ...
		return one(func(b []byte) (PairKey, bool, error) {
			f := strings.Fields(string(b))
			if len(f) < 3 {
				return PairKey{}, false, fmt.Errorf("want STATE PROTO ADDRESS")
			}
			if f[1] == "icmp" {
				return keyFrom(f[2], f[1], "0")
			}
			ap, err := netip.ParseAddrPort(f[2])
			if err != nil {
				return PairKey{}, false, err
			}
			return keyFrom(ap.Addr().String(), f[1], strconv.Itoa(int(ap.Port())))
		}), nil
	case "xml", "normal":
		return nil, fmt.Errorf("--format %s cannot be read back and appended to (%s): "+
			"resume a scan written as ndjson, list, csv or human, or rerun it", format, whyNotAppendable(format))
	}
	return nil, fmt.Errorf("unknown --format %q: use one of %v", format, Formats)
}

// parseGrepable reads a line of nmap's -oG ("Host: IP ()<TAB>Status: Up",
// "Host: IP ()<TAB>Ports: 80/open/tcp//http///, 81/closed/tcp/////"), and
// of the masscan-style one xdpscan wrote before
// ("Timestamp: N<TAB>Host: IP ()<TAB>Ports: 80/open/tcp////").
func parseGrepable(b []byte, pair func(PairKey)) error {
	f := strings.Split(string(b), "\t")
	if len(f) == 3 && strings.HasPrefix(f[0], "Timestamp: ") {
		f = f[1:]
	}
	if len(f) < 2 || !strings.HasPrefix(f[0], "Host: ") {
		return fmt.Errorf("want Host: then Status: or Ports:")
	}
	host, _, _ := strings.Cut(strings.TrimPrefix(f[0], "Host: "), " ")
	if _, err := netip.ParseAddr(host); err != nil {
		return err
	}
	for _, field := range f[1:] {
		ports, ok := strings.CutPrefix(field, "Ports: ")
		if !ok {
			if strings.HasPrefix(field, "Status: ") || strings.HasPrefix(field, "Ignored State: ") {
				continue
			}
			return fmt.Errorf("unknown field %q", truncate([]byte(field)))
		}
		for _, port := range strings.Split(ports, ", ") {
			p := strings.Split(port, "/")
			if len(p) < 3 {
				return fmt.Errorf("want PORT/STATE/PROTO")
			}
			k, _, err := keyFrom(host, p[2], p[0])
			if err != nil {
				return err
			}
			pair(k)
		}
	}
	return nil
}

func keyFrom(ip, proto, port string) (PairKey, bool, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return PairKey{}, false, err
	}
	p := protoNumber(proto)
	if p == 0 {
		return PairKey{}, false, fmt.Errorf("protocol %q", proto)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return PairKey{}, false, fmt.Errorf("port %q", port)
	}
	return PairKey{Addr: a, Proto: p, Port: uint16(n)}, true, nil
}
