package output

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary files to the read-back of every format (a
// resumed or appended scan reads the output it continues): no panic, and
// what it accepts it accounts for exactly: Whole never past Size, and no
// more pairs than lines.
func FuzzRead(f *testing.F) {
	for _, format := range []string{"ndjson", "list", "grepable", "csv", "human", "json"} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, format)
		if err != nil {
			f.Fatal(err)
		}
		for _, r := range readbackResults() {
			if err := w.Write(r); err != nil {
				f.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(format, buf.Bytes())
		f.Add(format, buf.Bytes()[:buf.Len()/2]) // torn
	}
	f.Add("csv", []byte("ip,port,proto,state,ttl,ts\n198.18.0.1,80,tcp,open,64,1\n"))
	// The masscan-style grepable lines xdpscan wrote before nmap's.
	f.Add("grepable", []byte("Timestamp: 1700000000\tHost: 198.18.0.1 ()\tPorts: 80/open/tcp////\n"))
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		rb, err := Read(bytes.NewReader(data), format)
		if err != nil {
			return
		}
		if rb.Whole > rb.Size || rb.Size != int64(len(data)) {
			t.Fatalf("whole %d, size %d, of %d bytes", rb.Whole, rb.Size, len(data))
		}
		// A grepable or json line may hold several pairs, each with at
		// least two slashes (80/open/tcp) or a "port" key.
		most := rb.Lines
		switch format {
		case "grepable":
			most = strings.Count(string(data[:rb.Whole]), "/") / 2
		case "json":
			// encoding/json matches keys without regard to case.
			most = strings.Count(strings.ToLower(string(data[:rb.Whole])), `"port"`)
		}
		if len(rb.Pairs) > most {
			t.Fatalf("%d pairs from %d lines (at most %d)", len(rb.Pairs), rb.Lines, most)
		}
		if n := int64(strings.Count(string(data[:rb.Whole]), "\n")); n != int64(rb.Lines) {
			t.Fatalf("%d lines counted, %d whole lines in the data", rb.Lines, n)
		}
	})
}
