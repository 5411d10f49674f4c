package engine

import (
	"fmt"
	"io"
)

// NewResultWriterAppend is NewResultWriter for a file that already holds
// results (--append-output, --resume): the format's header (csv's column
// names, list's #masscan) is not written a second time. XML cannot be
// appended to: the file ends with the document's closing tag.
func NewResultWriterAppend(w io.Writer, format string) (*ResultWriter, error) {
	if format == "xml" {
		return nil, fmt.Errorf("--format xml cannot be appended to (the file ends with </nmaprun>): use ndjson, list, grepable, csv or human")
	}
	return newResultWriter(w, format, false)
}
