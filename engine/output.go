package engine

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"
)

// Formats accepted by --format.
var Formats = []string{"human", "ndjson", "list", "grepable", "csv", "xml"}

// ResultWriter writes results as they arrive. Write is called from one
// goroutine and allocates nothing per result.
type ResultWriter struct {
	w      *bufio.Writer
	format string
	buf    []byte
	closed bool
}

// NewResultWriter writes format to w. Unknown formats are an error.
func NewResultWriter(w io.Writer, format string) (*ResultWriter, error) {
	rw := &ResultWriter{w: bufio.NewWriterSize(w, 64<<10), format: format, buf: make([]byte, 0, 256)}
	switch format {
	case "human", "ndjson", "grepable":
	case "list":
		rw.w.WriteString("#masscan\n")
	case "csv":
		rw.w.WriteString("ip,port,proto,state,ttl,ts\n")
	case "xml":
		fmt.Fprintf(rw.w, "<?xml version=\"1.0\"?>\n<nmaprun scanner=\"xdpscan\" start=\"%d\" version=\"1\" xmloutputversion=\"1.05\">\n"+
			"<scaninfo type=\"syn\" protocol=\"tcp\"/>\n", time.Now().Unix())
	default:
		return nil, fmt.Errorf("unknown --format %q: use one of %v", format, Formats)
	}
	return rw, nil
}

// Write writes one result.
func (rw *ResultWriter) Write(r Result) error {
	b := rw.buf[:0]
	switch rw.format {
	case "human":
		b = append(b, r.State...)
		for i := len(r.State); i < 7; i++ {
			b = append(b, ' ')
		}
		if len(r.State) >= 7 {
			b = append(b, ' ')
		}
		b = append(b, r.Proto...)
		b = append(b, ' ')
		if r.Proto != "icmp" {
			b = netip.AddrPortFrom(r.Addr, r.Port).AppendTo(b) // [2001:2::7]:22 for IPv6
		} else {
			b = r.Addr.AppendTo(b)
		}
		if r.TTL != 0 { // 0: a connect scan, which never sees the reply's header
			b = append(b, " ttl="...)
			b = strconv.AppendUint(b, uint64(r.TTL), 10)
		}
		if r.State == "filtered" || r.Proto != "tcp" {
			b = append(b, ' ')
			b = append(b, r.Reason...)
		}
		if r.From.IsValid() {
			b = append(b, " from "...)
			b = r.From.AppendTo(b)
		}
	case "ndjson":
		b = append(b, `{"ip":"`...)
		b = r.Addr.AppendTo(b)
		b = append(b, `","port":`...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, `,"proto":"`...)
		b = append(b, r.Proto...)
		b = append(b, `","state":"`...)
		b = append(b, r.State...)
		b = append(b, `","reason":"`...)
		b = append(b, r.Reason...)
		if r.From.IsValid() {
			b = append(b, `","from":"`...)
			b = r.From.AppendTo(b)
		}
		b = append(b, `","ttl":`...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, `,"ts":"`...)
		b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
	case "list": // masscan -oL: "open tcp 80 198.18.0.1 1700000000"
		b = append(b, r.State...)
		b = append(b, ' ')
		b = append(b, r.Proto...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, ' ')
		b = r.Addr.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
	case "grepable": // masscan -oG
		b = append(b, "Timestamp: "...)
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
		b = append(b, "\tHost: "...)
		b = r.Addr.AppendTo(b)
		b = append(b, " ()\tPorts: "...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, '/')
		b = append(b, r.State...)
		b = append(b, '/')
		b = append(b, r.Proto...)
		b = append(b, "////"...)
	case "csv":
		b = r.Addr.AppendTo(b)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, ',')
		b = append(b, r.Proto...)
		b = append(b, ',')
		b = append(b, r.State...)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, ',')
		b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	case "xml": // one <host> per result, as masscan -oX does
		b = append(b, `<host endtime="`...)
		b = strconv.AppendInt(b, r.Time.Unix(), 10)
		b = append(b, `"><address addr="`...)
		b = r.Addr.AppendTo(b)
		if r.Addr.Is6() {
			b = append(b, `" addrtype="ipv6"/><ports><port protocol="`...)
		} else {
			b = append(b, `" addrtype="ipv4"/><ports><port protocol="`...)
		}
		b = append(b, r.Proto...)
		b = append(b, `" portid="`...)
		b = strconv.AppendUint(b, uint64(r.Port), 10)
		b = append(b, `"><state state="`...)
		b = append(b, r.State...)
		b = append(b, `" reason="`...)
		b = append(b, r.Reason...)
		b = append(b, `" reason_ttl="`...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
		b = append(b, `"/></port></ports></host>`...)
	}
	b = append(b, '\n')
	rw.buf = b
	_, err := rw.w.Write(b)
	return err
}

// Close writes any trailer and flushes.
func (rw *ResultWriter) Close() error {
	if rw.closed {
		return nil
	}
	rw.closed = true
	switch rw.format {
	case "list":
		rw.w.WriteString("# end\n")
	case "xml":
		fmt.Fprintf(rw.w, "<runstats><finished time=\"%d\"/></runstats>\n</nmaprun>\n", time.Now().Unix())
	}
	return rw.w.Flush()
}

// Flush pushes buffered results out.
func (rw *ResultWriter) Flush() error { return rw.w.Flush() }
