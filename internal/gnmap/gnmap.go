// Package gnmap is a strict reader of nmap's grepable output (-oG), for
// the tests that hold xdpscan's grepable file to nmap's: every line must
// be a "# " comment or a Host line with known fields, every port entry
// exactly port/state/protocol/owner/service/rpc info/version/ (seven
// slashes), as nmap 7.93 writes them (output.cc, write_host_status and
// printportoutput).
package gnmap

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Port is one entry of a Ports field.
type Port struct {
	Port                                       uint16
	State, Proto, Owner, Service, RPC, Version string
}

// Host is what the Host lines of one address say.
type Host struct {
	Addr     netip.Addr
	Hostname string
	Status   string // "Up", "Down", or "" if no Status line
	Ports    []Port
}

// File is a parsed grepable file.
type File struct {
	Header, Trailer string // the first and last "# " lines
	Hosts           []*Host
}

var (
	// "# Nmap 7.93 scan initiated Fri Dec  4 16:59:00 2026 as: nmap ..."
	headerRE = regexp.MustCompile(`^# \S+ \S+ scan initiated [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4} as: .+$`)
	// "# Nmap done at Fri Dec  4 16:59:02 2026 -- 6 IP addresses (6 hosts up) scanned in 1.45 seconds"
	trailerRE = regexp.MustCompile(`^# \S+ done at [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4} -- \d+ IP address(es)? \(\d+ hosts? up\) scanned in \d+\.\d\d seconds$`)
	hostRE    = regexp.MustCompile(`^Host: (\S+) \(([^()]*)\)$`)
)

// Parse reads r strictly: the first error names the line.
func Parse(r io.Reader) (*File, error) {
	f := &File{}
	byAddr := map[netip.Addr]*Host{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<24)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if f.Trailer != "" {
			return nil, fmt.Errorf("line %d: after the trailer: %q", n, line)
		}
		if strings.HasPrefix(line, "#") {
			switch {
			case n == 1 && headerRE.MatchString(line):
				f.Header = line
			case n > 1 && trailerRE.MatchString(line):
				f.Trailer = line
			default:
				return nil, fmt.Errorf("line %d: not nmap's header or trailer: %q", n, line)
			}
			continue
		}
		if f.Header == "" {
			return nil, fmt.Errorf("line %d: no header before it", n)
		}
		fields := strings.Split(line, "\t")
		m := hostRE.FindStringSubmatch(fields[0])
		if m == nil || len(fields) < 2 {
			return nil, fmt.Errorf("line %d: want \"Host: ADDR (NAME)\" and a field: %q", n, line)
		}
		a, err := netip.ParseAddr(m[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		h := byAddr[a]
		if h == nil {
			h = &Host{Addr: a, Hostname: m[2]}
			byAddr[a] = h
			f.Hosts = append(f.Hosts, h)
		}
		for _, field := range fields[1:] {
			name, val, ok := strings.Cut(field, ": ")
			if !ok {
				return nil, fmt.Errorf("line %d: field %q is not NAME: VALUE", n, field)
			}
			switch name {
			case "Status":
				if val != "Up" && val != "Down" || h.Status != "" {
					return nil, fmt.Errorf("line %d: Status %q (want one Up or Down per host)", n, val)
				}
				h.Status = val
			case "Ports":
				if h.Ports != nil {
					return nil, fmt.Errorf("line %d: a second Ports field for %s", n, a)
				}
				for _, e := range strings.Split(val, ", ") {
					p, err := parsePort(e)
					if err != nil {
						return nil, fmt.Errorf("line %d: %v", n, err)
					}
					h.Ports = append(h.Ports, p)
				}
			case "Ignored State", "OS", "Seq Index", "IP ID Seq":
			default:
				return nil, fmt.Errorf("line %d: unknown field %q", n, name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if f.Header == "" || f.Trailer == "" {
		return nil, fmt.Errorf("no header or no trailer (%d lines)", n)
	}
	return f, nil
}

var states = map[string]bool{"open": true, "closed": true, "filtered": true, "unfiltered": true, "open|filtered": true, "closed|filtered": true}

func parsePort(e string) (Port, error) {
	f := strings.Split(e, "/")
	if len(f) != 8 || f[7] != "" {
		return Port{}, fmt.Errorf("port entry %q: want 7 slashes (port/state/proto/owner/service/rpc/version/)", e)
	}
	n, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return Port{}, fmt.Errorf("port entry %q: port %q", e, f[0])
	}
	if !states[f[1]] {
		return Port{}, fmt.Errorf("port entry %q: state %q", e, f[1])
	}
	if f[2] != "tcp" && f[2] != "udp" && f[2] != "sctp" && f[2] != "ip" {
		return Port{}, fmt.Errorf("port entry %q: protocol %q", e, f[2])
	}
	return Port{Port: uint16(n), State: f[1], Proto: f[2], Owner: f[3], Service: f[4], RPC: f[5], Version: f[6]}, nil
}
