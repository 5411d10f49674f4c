package output

import (
	"fmt"
	"io"
)

// NewWriterAppend is NewWriter for a file that already holds
// results (--append-output, --resume): the format's header (csv's column
// names, list's #masscan) is not written a second time. XML and JSON
// cannot be appended to (the file ends with the document's closing tag or
// bracket), nor grepable and normal (written host by host when the scan
// ends).
func NewWriterAppend(w io.Writer, format string) (*Writer, error) {
	if !Appendable(format) {
		return nil, fmt.Errorf("--format %s cannot be appended to (%s): use ndjson, list, csv or human", format, whyNotAppendable(format))
	}
	return newWriter(w, format, false, Options{})
}

func whyNotAppendable(format string) string {
	switch format {
	case "xml":
		return "the file ends with </nmaprun>"
	case "json":
		return "the file ends with the array's ]"
	case "grepable", "normal":
		return "its hosts are written, whole, when the scan ends"
	}
	return "unknown format"
}
