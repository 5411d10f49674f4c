package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/xdpscan/xdpscan/scan"
)

// PartKey is the member of a sharded scan's NDJSON header line: the
// line {"xdpscan_part":{...}} says which scan and shard the file holds
// (scan.Part), for `xdpscan merge`.
const PartKey = "xdpscan_part"

var partPrefix = []byte(`{"` + PartKey + `"`)

// IsPartHeader says whether an NDJSON line is the part header.
func IsPartHeader(line []byte) bool { return bytes.HasPrefix(line, partPrefix) }

// ParsePartHeader reads the part header line.
func ParsePartHeader(line []byte) (scan.Part, error) {
	var v map[string]scan.Part
	if err := json.Unmarshal(line, &v); err != nil {
		return scan.Part{}, fmt.Errorf("part header: %w", err)
	}
	p, ok := v[PartKey]
	if !ok {
		return scan.Part{}, fmt.Errorf("not a part header")
	}
	return p, nil
}

// WritePart records, before the first result, which part of which scan
// the output holds: a JSON line in ndjson, a comment in xml, list,
// grepable, normal and human, the array's first element in json (read-back
// skips each). csv, whose readers expect its header first, gets none. Call it once, on a new output (not one
// appended to).
func (rw *Writer) WritePart(p scan.Part) error {
	b, err := json.Marshal(map[string]scan.Part{PartKey: p})
	if err != nil {
		return err
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	switch rw.format {
	case "ndjson":
		rw.pending = append(append(rw.pending, b...), '\n')
	case "json":
		// The array's first element; results follow it after a ",".
		rw.pending = append(append(rw.pending, b...), '\n')
		rw.records++
	case "xml":
		rw.pending = fmt.Appendf(rw.pending, "<!-- %s -->\n", b)
	case "list", "grepable", "normal", "human":
		rw.pending = fmt.Appendf(rw.pending, "# %s\n", b)
	}
	return nil
}

// ParseNDJSON reads one result line of the ndjson format, whole (merge
// needs every field; Read keeps only the pair).
func ParseNDJSON(b []byte) (scan.Result, error) {
	var v struct {
		IP     string `json:"ip"`
		Port   uint16 `json:"port"`
		Proto  string `json:"proto"`
		State  string `json:"state"`
		Reason string `json:"reason"`
		From   string `json:"from"`
		TTL    uint8  `json:"ttl"`
		TS     string `json:"ts"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		return scan.Result{}, fmt.Errorf("not an NDJSON result: %v", err)
	}
	r := scan.Result{Port: v.Port, Proto: v.Proto, State: scan.State(v.State), Reason: v.Reason, TTL: v.TTL}
	var err error
	if r.Addr, err = netip.ParseAddr(v.IP); err != nil {
		return r, fmt.Errorf("not an NDJSON result: ip %q", v.IP)
	}
	switch r.Proto {
	case "tcp", "udp", "icmp":
	default:
		return r, fmt.Errorf("not an NDJSON result: proto %q", v.Proto)
	}
	if v.From != "" {
		if r.From, err = netip.ParseAddr(v.From); err != nil {
			return r, fmt.Errorf("not an NDJSON result: from %q", v.From)
		}
	}
	if v.TS != "" {
		if r.Time, err = time.Parse(time.RFC3339Nano, v.TS); err != nil {
			return r, fmt.Errorf("not an NDJSON result: ts %q", v.TS)
		}
	}
	return r, nil
}
