package output

import (
	"bytes"
	"encoding/json"
	"fmt"

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
// grepable, normal and human (which read-back skips). csv, whose readers
// expect its header first, and json (one array) get none. Call it once, on a new output (not one
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
	case "xml":
		rw.pending = fmt.Appendf(rw.pending, "<!-- %s -->\n", b)
	case "list", "grepable", "normal", "human":
		rw.pending = fmt.Appendf(rw.pending, "# %s\n", b)
	}
	return nil
}
