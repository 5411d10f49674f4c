package capture

import (
	"encoding/binary"
	"time"
)

// pcapng interface statistics block and its options
// (draft-ietf-opsawg-pcapng).
const (
	blockISB     = 5
	optIsbStart  = 2
	optIsbEnd    = 3
	optIsbIfRecv = 4
	optIsbIfDrop = 5
)

// appendISB appends an interface statistics block for interface ifID with
// a comment, which pcapgo's WriteInterfaceStats leaves out: the loss per
// stage. Timestamps are in the interface's nanoseconds (tsresol 9).
func appendISB(b []byte, ifID uint32, start, end time.Time, received, dropped uint64, comment string) []byte {
	le := binary.LittleEndian
	ts := func(b []byte, t time.Time) []byte {
		n := uint64(t.UnixNano())
		return le.AppendUint32(le.AppendUint32(b, uint32(n>>32)), uint32(n))
	}
	at := len(b)
	b = le.AppendUint32(b, blockISB)
	b = le.AppendUint32(b, 0) // total length, patched below
	b = le.AppendUint32(b, ifID)
	b = ts(b, end)
	if comment != "" {
		b = le.AppendUint16(b, optComment)
		b = le.AppendUint16(b, uint16(len(comment)))
		b = append(b, comment...)
		b = append(b, zeroPad[:pad4(len(comment))]...)
	}
	for _, o := range []struct {
		code uint16
		t    time.Time
	}{{optIsbStart, start}, {optIsbEnd, end}} {
		b = le.AppendUint16(b, o.code)
		b = le.AppendUint16(b, 8)
		b = ts(b, o.t)
	}
	for _, o := range []struct {
		code uint16
		v    uint64
	}{{optIsbIfRecv, received}, {optIsbIfDrop, dropped}} {
		b = le.AppendUint16(b, o.code)
		b = le.AppendUint16(b, 8)
		b = le.AppendUint64(b, o.v)
	}
	b = append(b, 0, 0, 0, 0) // opt_endofopt
	total := uint32(len(b) - at + 4)
	le.PutUint32(b[at+4:], total)
	return le.AppendUint32(b, total)
}
