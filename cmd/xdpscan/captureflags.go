package main

import (
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"os"
	"strings"
	"syscall"

	"github.com/xdpscan/xdpscan/capture"
)

// tcpdumpOpts are capture's flags named as tcpdump names them.
type tcpdumpOpts struct {
	n, nn                     bool // names are never resolved: accepted for tcpdump's habit
	v                         int
	vv, vvv                   bool
	e, q, S                   bool
	x, xx, X, XX              bool
	t, tt, ttt, tttt, ttttt   bool
	lineBuffered              bool
	readFile, filterFile      string
	list                      bool
	bufferKiB                 uint
	noPromisc                 bool
	immediate, packetBuffered bool
	print                     bool
}

// addTcpdumpFlags registers tcpdump's printing, offline and buffering
// flags on capture's flag set.
func addTcpdumpFlags(fs *flag.FlagSet, o *tcpdumpOpts) {
	fs.BoolVar(&o.n, "n", false, "do not resolve addresses (xdpscan never does: accepted for tcpdump's habit)")
	fs.BoolVar(&o.nn, "nn", false, "do not resolve addresses, ports or protocols (never done; accepted)")
	fs.CountVar(&o.v, "v", "verbose text: IP header fields, checksums, ICMP errors' quoted packet (as tcpdump -v; -vv more)")
	fs.BoolVar(&o.vv, "vv", false, "more verbose text (tcpdump -vv)")
	fs.BoolVar(&o.vvv, "vvv", false, "as -vv (tcpdump -vvv)")
	fs.BoolVar(&o.e, "e", false, "print the link-level header: MACs, ethertype, VLAN tags")
	fs.BoolVar(&o.q, "q", false, "quick text: less protocol detail")
	fs.BoolVar(&o.S, "S", false, "absolute TCP sequence numbers (default: relative within a conversation, as tcpdump)")
	fs.BoolVar(&o.x, "x", false, "print each packet in hex from the network header")
	fs.BoolVar(&o.xx, "xx", false, "print each packet in hex, link header included")
	fs.BoolVar(&o.X, "X", false, "print each packet in hex and ASCII from the network header")
	fs.BoolVar(&o.XX, "XX", false, "print each packet in hex and ASCII, link header included")
	fs.BoolVar(&o.t, "t", false, "no timestamp on each line")
	fs.BoolVar(&o.tt, "tt", false, "timestamp as seconds since the epoch")
	fs.BoolVar(&o.ttt, "ttt", false, "timestamp as the time since the previous packet")
	fs.BoolVar(&o.tttt, "tttt", false, "timestamp as date and time of day")
	fs.BoolVar(&o.ttttt, "ttttt", false, "timestamp as the time since the first packet")
	fs.BoolVar(&o.lineBuffered, "l", false, "write each text line as it is printed (default: each batch, at most 20 ms after its first packet)")
	fs.StringVar(&o.readFile, "r", "", "read packets from a pcap or pcapng FILE (\"-\": stdin) and run each through the same XDP program with BPF_PROG_RUN, instead of capturing")
	fs.StringVar(&o.filterFile, "F", "", "read the filter expression from FILE")
	fs.BoolVar(&o.list, "D", false, "list the interfaces: index, state, the XDP modes each supports and the XDP program attached")
	fs.BoolVar(&o.list, "list-interfaces", false, "same as -D")
	fs.UintVar(&o.bufferKiB, "B", 0, "ring buffer size in KiB, rounded up to a power of two (default 16384)")
	fs.UintVar(&o.bufferKiB, "buffer-size", 0, "same as -B")
	fs.BoolVar(&o.noPromisc, "p", false, "do not put the interface into promiscuous mode; capture only frames to its MAC, broadcast or multicast")
	fs.BoolVar(&o.noPromisc, "no-promiscuous-mode", false, "same as -p")
	fs.BoolVar(&o.immediate, "immediate-mode", false, "wake the reader for every packet instead of once a batch has gathered")
	fs.BoolVar(&o.packetBuffered, "U", false, "with -w: write each packet to the file as it arrives")
	fs.BoolVar(&o.packetBuffered, "packet-buffered", false, "same as -U")
	fs.BoolVar(&o.print, "print", false, "print packets as text even with -w")
	setGroup(fs, "Output", "n", "nn", "v", "vv", "vvv", "e", "q", "S", "x", "xx", "X", "XX", "t", "tt", "ttt", "tttt", "ttttt",
		"l", "print", "U", "packet-buffered")
	setGroup(fs, "Paths", "r", "F", "D", "list-interfaces", "p", "no-promiscuous-mode")
	setGroup(fs, "Rate and timing", "B", "buffer-size", "immediate-mode")
	setMetavar(fs, "FILE", "r", "F")
	setMetavar(fs, "KiB", "B", "buffer-size")
}

// textOptions are the printer's options from the flags.
func (o *tcpdumpOpts) textOptions(nano bool) capture.TextOptions {
	t := capture.TextOptions{Link: o.e, Quick: o.q, Absolute: o.S, Nano: nano}
	switch {
	case o.vvv || o.vv || o.v > 1:
		t.Verbose = 2
	case o.v == 1:
		t.Verbose = 1
	}
	switch {
	case o.XX:
		t.Hex, t.ASCII = 2, true
	case o.X:
		t.Hex, t.ASCII = 1, true
	case o.xx:
		t.Hex = 2
	case o.x:
		t.Hex = 1
	}
	for i, set := range []bool{o.t, o.tt, o.ttt, o.tttt, o.ttttt} {
		if set {
			t.Time = i + 1
		}
	}
	return t
}

// ringBytes is -B in bytes: a power of two of at least a page (the ring
// buffer map's rule); 0 keeps the default.
func (o *tcpdumpOpts) ringBytes() (uint32, error) {
	if o.bufferKiB == 0 {
		return 0, nil
	}
	if o.bufferKiB > 1<<20 {
		return 0, fmt.Errorf("-B %d: at most %d KiB (1 GiB)", o.bufferKiB, 1<<20)
	}
	b := uint32(os.Getpagesize())
	for b < uint32(o.bufferKiB)*1024 {
		b <<= 1
	}
	return b, nil
}

// filterExpression is the filter: -F's file or the arguments.
func (o *tcpdumpOpts) filterExpression(args []string) (string, error) {
	if o.filterFile == "" {
		return strings.Join(args, " "), nil
	}
	if len(args) > 0 {
		return "", fmt.Errorf("-F %s and a filter on the command line (%s): give one of them", o.filterFile, strings.Join(args, " "))
	}
	b, err := os.ReadFile(o.filterFile)
	if err != nil {
		return "", fmt.Errorf("-F: %w", err)
	}
	// tcpdump's filter files may have comments after '#'
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	return strings.Join(strings.Fields(strings.Join(lines, " ")), " "), nil
}

// isBrokenPipe: stdout's reader went away (`| head`), which is no failure.
func isBrokenPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }
