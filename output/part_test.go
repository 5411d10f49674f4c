package output

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/xdpscan/xdpscan/scan"
)

// TestPartHeaderInEveryFormat: a sharded scan's output says which part of
// which scan it holds (issue 21: "the XML/JSON headers record targets,
// ports, seed, shard and shards"), the file stays what its readers expect
// (the JSON array still parses, its first element the part), and read-back
// counts only the results.
func TestPartHeaderInEveryFormat(t *testing.T) {
	part := scan.Part{Ports: "80,U:53", Seed: 7, Shard: 1, Shards: 3}
	results := readbackResults()
	for _, format := range []string{"ndjson", "json", "list", "grepable", "xml", "human"} {
		t.Run(format, func(t *testing.T) {
			write := func(withPart bool) []byte {
				var buf bytes.Buffer
				w, err := NewWriter(&buf, format)
				if err != nil {
					t.Fatal(err)
				}
				if withPart {
					if err := w.WritePart(part); err != nil {
						t.Fatal(err)
					}
				}
				for _, r := range results {
					if err := w.Write(r); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			}
			var buf bytes.Buffer
			buf.Write(write(true))
			if !bytes.Contains(buf.Bytes(), []byte(`"`+PartKey+`":{`)) || !bytes.Contains(buf.Bytes(), []byte(`"seed":7,"shard":1,"shards":3`)) {
				t.Fatalf("no part header in:\n%s", buf.Bytes())
			}
			if format == "json" {
				var arr []map[string]any
				if err := json.Unmarshal(buf.Bytes(), &arr); err != nil {
					t.Fatalf("not a JSON array: %v\n%s", err, buf.Bytes())
				}
				if _, ok := arr[0][PartKey]; !ok || len(arr) != len(results)+1 {
					t.Fatalf("%d elements, the first %v: want the part, then %d results", len(arr), arr[0], len(results))
				}
			}
			if format == "xml" {
				return // not read back (it is written whole at the end)
			}
			rb, err := Read(bytes.NewReader(buf.Bytes()), format)
			if err != nil {
				t.Fatalf("read back: %v\n%s", err, buf.Bytes())
			}
			plain, err := Read(bytes.NewReader(write(false)), format)
			if err != nil {
				t.Fatal(err)
			}
			if len(rb.Pairs) != len(plain.Pairs) || len(rb.Pairs) == 0 {
				t.Fatalf("read back %d pairs, %d without the part header", len(rb.Pairs), len(plain.Pairs))
			}
		})
	}
}
