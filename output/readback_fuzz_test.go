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
	for _, format := range []string{"ndjson", "list", "grepable", "csv", "human"} {
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
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		rb, err := Read(bytes.NewReader(data), format)
		if err != nil {
			return
		}
		if rb.Whole > rb.Size || rb.Size != int64(len(data)) {
			t.Fatalf("whole %d, size %d, of %d bytes", rb.Whole, rb.Size, len(data))
		}
		if len(rb.Pairs) > rb.Lines {
			t.Fatalf("%d pairs from %d lines", len(rb.Pairs), rb.Lines)
		}
		if n := int64(strings.Count(string(data[:rb.Whole]), "\n")); n != int64(rb.Lines) {
			t.Fatalf("%d lines counted, %d whole lines in the data", rb.Lines, n)
		}
	})
}
