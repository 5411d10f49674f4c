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

// Read reads a results file written in format (every format but
// xml, which cannot be appended to). A line that is not a result, a
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
		k, ok, perr := parse(text)
		if perr != nil {
			return nil, fmt.Errorf("line %d %q is not a %s result: %v", rb.Lines, truncate(text), format, perr)
		}
		if ok {
			rb.Pairs[k] = struct{}{}
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// lineParser returns the parser of one line of format: the pair, or
// ok=false for a line that is not a result (csv's header).
func lineParser(format string) (func([]byte) (PairKey, bool, error), error) {
	switch format {
	case "ndjson":
		return func(b []byte) (PairKey, bool, error) {
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
		}, nil
	case "list": // open tcp 80 198.18.0.1 1700000000
		return func(b []byte) (PairKey, bool, error) {
			f := strings.Fields(string(b))
			if len(f) != 5 {
				return PairKey{}, false, fmt.Errorf("want 5 fields")
			}
			return keyFrom(f[3], f[1], f[2])
		}, nil
	case "grepable": // Timestamp: N<TAB>Host: IP ()<TAB>Ports: 80/open/tcp////
		return func(b []byte) (PairKey, bool, error) {
			f := strings.Split(string(b), "\t")
			if len(f) != 3 || !strings.HasPrefix(f[1], "Host: ") || !strings.HasPrefix(f[2], "Ports: ") {
				return PairKey{}, false, fmt.Errorf("want Timestamp, Host and Ports")
			}
			host, _, _ := strings.Cut(strings.TrimPrefix(f[1], "Host: "), " ")
			p := strings.Split(strings.TrimPrefix(f[2], "Ports: "), "/")
			if len(p) < 3 {
				return PairKey{}, false, fmt.Errorf("want PORT/STATE/PROTO")
			}
			return keyFrom(host, p[2], p[0])
		}, nil
	case "csv": // ip,port,proto,state,ttl,ts
		return func(b []byte) (PairKey, bool, error) {
			if string(b) == "ip,port,proto,state,ttl,ts" {
				return PairKey{}, false, nil
			}
			f := strings.Split(string(b), ",")
			if len(f) != 6 {
				return PairKey{}, false, fmt.Errorf("want 6 fields")
			}
			return keyFrom(f[0], f[2], f[1])
		}, nil
	case "human": // open    tcp 198.18.0.1:80 ttl=64 / up      icmp 198.18.0.1 ...
		return func(b []byte) (PairKey, bool, error) {
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
		}, nil
	case "xml":
		return nil, fmt.Errorf("--format xml cannot be read back and appended to (the file ends with </nmaprun>): " +
			"resume a scan written as ndjson, list, grepable, csv or human, or rerun it")
	}
	return nil, fmt.Errorf("unknown --format %q: use one of %v", format, Formats)
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
