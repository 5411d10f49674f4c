package output

import (
	"fmt"
	"io"
)

// NewWriterAppend is NewWriter for a file that already holds
// results (--append-output, --resume): the format's header (csv's column
// names, list's #masscan) is not written a second time. XML cannot be
// appended to: the file ends with the document's closing tag.
func NewWriterAppend(w io.Writer, format string) (*Writer, error) {
	if format == "xml" {
		return nil, fmt.Errorf("--format xml cannot be appended to (the file ends with </nmaprun>): use ndjson, list, grepable, csv or human")
	}
	return newWriter(w, format, false)
}
