package output

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/xdpscan/xdpscan/scan"
)

// The host-grouped formats (nmap's XML, grepable and normal output) write
// one record per address holding all its ports. A scan's replies come in
// the permutation's order (any address, any time until the end of the
// wait), so a host is whole only when the scan ends: the results are kept
// until Close, sorted by address, protocol and port, and written then.
//
// Memory stays bounded: past spillAt results (about 150 bytes each in
// memory: 256Ki results, about 40 MB), the results held are sorted and
// written to a temporary file as one sorted run (about 45 bytes a result),
// and Close merges the runs (a 64 KiB read buffer each) with what is still
// in memory. The temporary file is unlinked as soon as it is created: a
// killed scan leaves nothing behind. A /8 × 100 ports with 10% answering
// (1.7 M results) makes 6 runs and 75 MB of temporary file.
const spillAt = 256 << 10

// hostStore holds the results of a grouped format until Close.
type hostStore struct {
	mem     []scan.Result
	spillAt int
	dir     string // for the temporary file; "" = os.TempDir()
	spill   *os.File
	end     int64   // bytes in spill
	runs    []int64 // each run's start offset in spill; it ends at the next one's (or end)
	reasons map[string]string
}

func newHostStore(dir string, limit int) *hostStore {
	if limit <= 0 {
		limit = spillAt
	}
	return &hostStore{spillAt: limit, dir: dir, reasons: map[string]string{}}
}

func (s *hostStore) add(r scan.Result) error {
	s.mem = append(s.mem, r)
	if len(s.mem) >= s.spillAt {
		return s.spillRun()
	}
	return nil
}

// resultOrder sorts by address, then TCP before UDP before ICMP (nmap
// lists a host's TCP ports, then its UDP ones), then port.
func resultOrder(a, b scan.Result) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if c := protoRank(a.Proto) - protoRank(b.Proto); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

func protoRank(p string) int {
	switch p {
	case "tcp":
		return 0
	case "udp":
		return 1
	}
	return 2
}

func (s *hostStore) spillRun() error {
	slices.SortFunc(s.mem, resultOrder)
	if s.spill == nil {
		f, err := os.CreateTemp(s.dir, ".xdpscan-sort-*")
		if err != nil && s.dir != "" {
			f, err = os.CreateTemp("", ".xdpscan-sort-*") // a directory this user cannot write to (scan -Z)
		}
		if err != nil {
			return fmt.Errorf("temporary file to sort the results by host (%d results held): %w", len(s.mem), err)
		}
		os.Remove(f.Name()) // open, unlinked: nothing is left behind, even after a SIGKILL
		s.spill = f
	}
	bw := bufio.NewWriterSize(io.NewOffsetWriter(s.spill, s.end), 1<<16)
	n := int64(0)
	var buf []byte
	for _, r := range s.mem {
		buf = encodeResult(buf[:0], r)
		bw.Write(buf)
		n += int64(len(buf))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("temporary file to sort the results by host: %w", err)
	}
	s.runs = append(s.runs, s.end)
	s.end += n
	s.mem = s.mem[:0]
	return nil
}

// close frees the temporary file.
func (s *hostStore) close() {
	if s.spill != nil {
		s.spill.Close()
		s.spill = nil
	}
	s.mem = nil
}

// eachHost calls fn with every host's results, in address order, each
// host's sorted by protocol and port; host is reused between calls.
func (s *hostStore) eachHost(fn func(host []scan.Result) error) error {
	slices.SortFunc(s.mem, resultOrder)
	next, err := s.merged()
	if err != nil {
		return err
	}
	var host []scan.Result
	for {
		r, ok, err := next()
		if err != nil {
			return err
		}
		if len(host) > 0 && (!ok || r.Addr != host[0].Addr) {
			if err := fn(host); err != nil {
				return err
			}
			host = host[:0]
		}
		if !ok {
			return nil
		}
		if n := len(host); n > 0 && host[n-1].Proto == r.Proto && host[n-1].Port == r.Port {
			continue // a pair twice: written once
		}
		host = append(host, r)
	}
}

// source is one sorted sequence of results: a run of the spill file, or
// the results in memory.
type source struct {
	cur  scan.Result
	next func() (scan.Result, bool, error)
}

type sourceHeap []*source

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return resultOrder(h[i].cur, h[j].cur) < 0 }
func (h sourceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sourceHeap) Push(x any)        { *h = append(*h, x.(*source)) }
func (h *sourceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merged returns the k-way merge of the runs and the memory.
func (s *hostStore) merged() (func() (scan.Result, bool, error), error) {
	i := 0
	memNext := func() (scan.Result, bool, error) {
		if i == len(s.mem) {
			return scan.Result{}, false, nil
		}
		i++
		return s.mem[i-1], true, nil
	}
	if len(s.runs) == 0 {
		return memNext, nil
	}
	nexts := []func() (scan.Result, bool, error){memNext}
	for k, off := range s.runs {
		end := s.end
		if k+1 < len(s.runs) {
			end = s.runs[k+1]
		}
		br := bufio.NewReaderSize(io.NewSectionReader(s.spill, off, end-off), 1<<16)
		nexts = append(nexts, func() (scan.Result, bool, error) { return s.decodeResult(br) })
	}
	h := &sourceHeap{}
	for _, n := range nexts {
		r, ok, err := n()
		if err != nil {
			return nil, err
		}
		if ok {
			*h = append(*h, &source{cur: r, next: n})
		}
	}
	heap.Init(h)
	return func() (scan.Result, bool, error) {
		if h.Len() == 0 {
			return scan.Result{}, false, nil
		}
		top := (*h)[0]
		r := top.cur
		nr, ok, err := top.next()
		if err != nil {
			return scan.Result{}, false, err
		}
		if ok {
			top.cur = nr
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
		return r, true, nil
	}, nil
}

// The spill's record: address (16 bytes, and a byte: 4 or 6), port,
// protocol, state, TTL, time (Unix nanoseconds), From (a byte 0, 4 or 6,
// then 16 bytes if set), and the reason (a length byte, then the bytes).
func encodeResult(b []byte, r scan.Result) []byte {
	b = appendAddr(b, r.Addr)
	b = binary.LittleEndian.AppendUint16(b, r.Port)
	b = append(b, byte(protoRank(r.Proto)), stateCode(r.State), r.TTL)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = appendAddr(b, r.From)
	reason := r.Reason
	if len(reason) > 255 {
		reason = reason[:255]
	}
	b = append(b, byte(len(reason)))
	return append(b, reason...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b = append(b, 4)
	case a.IsValid():
		b = append(b, 6)
	default:
		return append(b, 0)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

var states = []scan.State{scan.StateOpen, scan.StateClosed, scan.StateFiltered, scan.StateUp}

func stateCode(s scan.State) byte {
	if i := slices.Index(states, s); i >= 0 {
		return byte(i)
	}
	return byte(len(states))
}

var protos = []string{"tcp", "udp", "icmp"}

var errSpillCorrupt = errors.New("temporary file of results to sort is corrupt")

func (s *hostStore) decodeResult(br *bufio.Reader) (scan.Result, bool, error) {
	var r scan.Result
	a, err := readAddr(br)
	if err == io.EOF {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	var fixed [2 + 3 + 8]byte
	if _, err := io.ReadFull(br, fixed[:]); err != nil {
		return r, false, errSpillCorrupt
	}
	r.Addr = a
	r.Port = binary.LittleEndian.Uint16(fixed[0:])
	if int(fixed[2]) >= len(protos) || int(fixed[3]) >= len(states) {
		return r, false, errSpillCorrupt
	}
	r.Proto, r.State, r.TTL = protos[fixed[2]], states[fixed[3]], fixed[4]
	r.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(fixed[5:])))
	if r.From, err = readAddr(br); err != nil {
		return r, false, errSpillCorrupt
	}
	n, err := br.ReadByte()
	if err != nil {
		return r, false, errSpillCorrupt
	}
	reason := make([]byte, n)
	if _, err := io.ReadFull(br, reason); err != nil {
		return r, false, errSpillCorrupt
	}
	// The reasons are a handful of strings: one copy of each.
	rs, ok := s.reasons[string(reason)]
	if !ok {
		rs = string(reason)
		s.reasons[rs] = rs
	}
	r.Reason = rs
	return r, true, nil
}

func readAddr(br *bufio.Reader) (netip.Addr, error) {
	kind, err := br.ReadByte()
	if err != nil {
		return netip.Addr{}, err
	}
	if kind == 0 {
		return netip.Addr{}, nil
	}
	var a16 [16]byte
	if _, err := io.ReadFull(br, a16[:]); err != nil {
		return netip.Addr{}, errSpillCorrupt
	}
	a := netip.AddrFrom16(a16)
	if kind == 4 {
		a = a.Unmap()
	}
	return a, nil
}
