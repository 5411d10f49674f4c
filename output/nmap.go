package output

// nmap's three outputs (-oX, -oG, -oN), one record per host.
//
// What nmap.dtd requires and this writes: scanner="nmap" (the DTD allows
// no other value: xdpscan names itself in args, version and a comment),
// a scaninfo per protocol probed, verbose, debugging, then per host
// status, address and ports, and runstats with finished and hosts.
// Nothing run-specific is inside a <host> but the reply's TTL and times,
// which ndiff does not compare: two scans of the same network with
// different seeds (another probe order, other reply times) differ only in
// the header lines ndiff always prints.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xdpscan/xdpscan/scan"
)

// nmapTime is nmap's startstr and # header date: "Fri Dec  4 16:59:00 2026".
const nmapTime = "Mon Jan _2 15:04:05 2006"

func xmlEscape(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '-':
			// nmap escapes "--" too, so the args fit in an XML comment.
			if i+1 < len(s) && s[i+1] == '-' {
				b = append(b, "-&#45;"...)
				i++
			} else {
				b = append(b, c)
			}
		default:
			if c < 0x20 && c != '\t' {
				b = append(b, ' ')
			} else {
				b = append(b, c)
			}
		}
	}
	return b
}

func (m *Meta) scaninfo(b []byte) []byte {
	if len(m.TCP) > 0 {
		typ := "syn"
		if m.Connect {
			typ = "connect"
		}
		b = fmt.Appendf(b, "<scaninfo type=\"%s\" protocol=\"tcp\" numservices=\"%d\" services=\"%s\"/>\n", typ, countPorts(m.TCP), portRanges(m.TCP))
	}
	if len(m.UDP) > 0 {
		b = fmt.Appendf(b, "<scaninfo type=\"udp\" protocol=\"udp\" numservices=\"%d\" services=\"%s\"/>\n", countPorts(m.UDP), portRanges(m.UDP))
	}
	return b
}

func countPorts(ps []uint16) int {
	seen := map[uint16]bool{}
	for _, p := range ps {
		seen[p] = true
	}
	return len(seen)
}

func (m *Meta) xmlHeader(b []byte) []byte {
	start := m.start()
	args := string(xmlEscape(nil, m.args()))
	b = append(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n"...)
	b = fmt.Appendf(b, "<!-- xdpscan %s scan initiated %s as: %s -->\n", m.version(), start.Format(nmapTime), args)
	b = fmt.Appendf(b, "<nmaprun scanner=\"nmap\" args=\"%s\" start=\"%d\" startstr=\"%s\" version=\"%s\" xmloutputversion=\"1.05\">\n",
		args, start.Unix(), start.Format(nmapTime), m.version())
	b = m.scaninfo(b)
	return append(b, "<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n"...)
}

// xmlUnfinished is the XML file's trailer while the scan runs (hosts are
// written when it ends): a killed scan leaves a valid document that says
// it did not finish.
func (m *Meta) xmlUnfinished() string {
	t := m.start()
	return fmt.Sprintf("<runstats><finished time=\"%d\" timestr=\"%s\" elapsed=\"0\" exit=\"error\" "+
		"errormsg=\"the scan did not finish: hosts are written when it ends (a streaming output such as -oD or -oL beside this one keeps every result)\"/>"+
		"<hosts up=\"0\" down=\"0\" total=\"0\"/>\n</runstats>\n</nmaprun>\n", t.Unix(), t.Format(nmapTime))
}

// hostCounts is what runstats and the trailers say.
type hostCounts struct{ up, down, total uint64 }

func (m *Meta) counts(up, seen uint64) hostCounts {
	total := max(m.Hosts, seen)
	return hostCounts{up: up, down: total - up, total: total}
}

func (m *Meta) summary(c hostCounts, end time.Time) string {
	return fmt.Sprintf("xdpscan done at %s -- %d IP address%s (%d host%s up) scanned in %.2f seconds",
		end.Format(nmapTime), c.total, plural(c.total, "es"), c.up, plural(c.up, "s"), end.Sub(m.start()).Seconds())
}

func plural(n uint64, s string) string {
	if n == 1 {
		return ""
	}
	return s
}

func (m *Meta) xmlTrailer(b []byte, c hostCounts, end time.Time) []byte {
	return fmt.Appendf(b, "<runstats><finished time=\"%d\" timestr=\"%s\" summary=\"%s\" elapsed=\"%.2f\" exit=\"success\"/>"+
		"<hosts up=\"%d\" down=\"%d\" total=\"%d\"/>\n</runstats>\n</nmaprun>\n",
		end.Unix(), end.Format(nmapTime), xmlEscape(nil, m.summary(c, end)), end.Sub(m.start()).Seconds(), c.up, c.down, c.total)
}

// hostStatus is what a host's results say of it: up if it answered
// anything itself (the reason: its echo reply, else its first port's),
// down if only a router answered for it (host-unreach from ...).
func hostStatus(host []scan.Result) (up bool, why scan.Result) {
	why = host[0]
	for _, r := range host {
		if !r.From.IsValid() || r.From == r.Addr {
			if !up || r.Proto == "icmp" {
				up, why = true, r
			}
		}
	}
	return up, why
}

// reasonWord is the reason without xdpscan's annotations
// (";cookie-bits=8", ";conflict"), which nmap's readers do not expect.
func reasonWord(r string) string {
	w, _, _ := strings.Cut(r, ";")
	return w
}

func (m *Meta) xmlHost(b []byte, host []scan.Result, svc *Services) []byte {
	up, why := hostStatus(host)
	first, last := host[0].Time, host[0].Time
	for _, r := range host {
		if r.Time.Before(first) {
			first = r.Time
		}
		if r.Time.After(last) {
			last = r.Time
		}
	}
	state := "up"
	if !up {
		state = "down"
	}
	b = fmt.Appendf(b, "<host starttime=\"%d\" endtime=\"%d\"><status state=\"%s\" reason=\"%s\" reason_ttl=\"%d\"/>\n",
		first.Unix(), last.Unix(), state, xmlEscape(nil, reasonWord(why.Reason)), why.TTL)
	addrType := "ipv4"
	if host[0].Addr.Is6() {
		addrType = "ipv6"
	}
	b = append(b, "<address addr=\""...)
	b = host[0].Addr.AppendTo(b)
	b = append(b, "\" addrtype=\""...)
	b = append(b, addrType...)
	b = append(b, "\"/>\n<hostnames>\n</hostnames>\n"...)
	ports := false
	for _, r := range host {
		if r.Proto == "icmp" {
			continue
		}
		if !ports {
			b = append(b, "<ports>"...)
			ports = true
		}
		b = fmt.Appendf(b, "<port protocol=\"%s\" portid=\"%d\"><state state=\"%s\" reason=\"%s\" reason_ttl=\"%d\"",
			r.Proto, r.Port, r.State, xmlEscape(nil, reasonWord(r.Reason)), r.TTL)
		if r.From.IsValid() && r.From != r.Addr {
			b = append(b, " reason_ip=\""...)
			b = r.From.AppendTo(b)
			b = append(b, '"')
		}
		b = append(b, "/>"...)
		if name := svc.Name(r.Proto, r.Port); name != "" {
			b = fmt.Appendf(b, "<service name=\"%s\" method=\"table\" conf=\"3\"/>", xmlEscape(nil, name))
		}
		b = append(b, "</port>\n"...)
	}
	if ports {
		b = append(b, "</ports>\n"...)
	}
	return append(b, "</host>\n"...)
}

// grepable (-oG), as nmap writes it: a "Status" line per host, then a
// "Ports" line with every port as port/state/proto/owner/service/rpc/version/.
func (m *Meta) grepHeader(b []byte) []byte {
	return fmt.Appendf(b, "# xdpscan %s scan initiated %s as: %s\n", m.version(), m.start().Format(nmapTime), m.args())
}

func (m *Meta) grepHost(b []byte, host []scan.Result, svc *Services) []byte {
	up, _ := hostStatus(host)
	status := "Up"
	if !up {
		status = "Down"
	}
	b = append(b, "Host: "...)
	b = host[0].Addr.AppendTo(b)
	b = append(b, " ()\tStatus: "...)
	b = append(b, status...)
	b = append(b, '\n')
	n := 0
	for _, r := range host {
		if r.Proto == "icmp" {
			continue
		}
		if n == 0 {
			b = append(b, "Host: "...)
			b = host[0].Addr.AppendTo(b)
			b = append(b, " ()\tPorts: "...)
		} else {
			b = append(b, ", "...)
		}
		n++
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, '/')
		b = append(b, r.State...)
		b = append(b, '/')
		b = append(b, r.Proto...)
		b = append(b, "//"...)
		// nmap replaces the field separators in a service name.
		b = append(b, strings.NewReplacer("/", "|", ",", "|").Replace(svc.Name(r.Proto, r.Port))...)
		b = append(b, "///"...)
	}
	if n > 0 {
		b = append(b, '\n')
	}
	return b
}

func (m *Meta) grepTrailer(b []byte, c hostCounts, end time.Time) []byte {
	return fmt.Appendf(b, "# %s\n", m.summary(c, end))
}

// normal (-oN): nmap's screen output with --reason.
func (m *Meta) normalHost(b []byte, host []scan.Result, svc *Services) []byte {
	up, why := hostStatus(host)
	b = append(b, "Nmap scan report for "...)
	b = host[0].Addr.AppendTo(b)
	if up {
		b = fmt.Appendf(b, "\nHost is up, received %s ttl %d.\n", reasonWord(why.Reason), why.TTL)
	} else {
		b = fmt.Appendf(b, "\nHost seems down: %s from %s.\n", reasonWord(why.Reason), why.From)
	}
	type row struct{ port, state, service, reason string }
	var rows []row
	wPort, wState, wService := len("PORT"), len("STATE"), len("SERVICE")
	for _, r := range host {
		if r.Proto == "icmp" {
			continue
		}
		reason := fmt.Sprintf("%s ttl %d", reasonWord(r.Reason), r.TTL)
		if r.From.IsValid() && r.From != r.Addr {
			reason += " from " + r.From.String()
		}
		name := svc.Name(r.Proto, r.Port)
		if name == "" {
			name = "unknown"
		}
		rw := row{fmt.Sprintf("%d/%s", r.Port, r.Proto), string(r.State), name, reason}
		wPort, wState, wService = max(wPort, len(rw.port)), max(wState, len(rw.state)), max(wService, len(rw.service))
		rows = append(rows, rw)
	}
	if len(rows) > 0 {
		b = fmt.Appendf(b, "\n%-*s %-*s %-*s REASON\n", wPort, "PORT", wState, "STATE", wService, "SERVICE")
		for _, rw := range rows {
			b = fmt.Appendf(b, "%-*s %-*s %-*s %s\n", wPort, rw.port, wState, rw.state, wService, rw.service, rw.reason)
		}
	}
	return append(b, '\n')
}
