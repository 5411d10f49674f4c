package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/loader"
)

const captureSynopsis = `xdpscan capture -i IFACE [flags] [FILTER EXPRESSION...]
       xdpscan capture -r FILE [flags] [FILTER EXPRESSION...]
       xdpscan capture -D

Captures the packets the interface receives, at XDP, and those it sends, in
a TC egress program (tcx, Linux 6.6; a clsact qdisc's filter below it), as
tcpdump -Q inout does; -Q in or -Q out takes one direction. The filter
(tcpdump's pcap-filter language,
e.g. 'tcp port 443 and not src net 198.18.1.0/24') is compiled by libpcap and
runs inside the kernel, translated to eBPF; only matching packets are copied,
at most --snaplen bytes each (-s 0: 262144, as tcpdump; frames larger than a
page, MTU 9000, are captured whole, received or sent). The
filter sees each frame as tcpdump's does on a live Linux interface: the outer
VLAN tag is not in the packet, 'vlan' and 'vlan N' test it, and 'tcp' matches
TCP inside a VLAN; written frames keep the tag in place, as tcpdump writes
them. A tag the NIC took out of the frame before XDP (rx-vlan-offload), or
that a veth's peer sent in metadata, is read from the driver in native mode
(bpf_xdp_metadata_rx_vlan_tag, Linux 6.8: veth, mlx5, ...) and put back in
place while the filter runs; generic mode cannot see such a tag (a notice
says so where the NIC strips tags). With -r, as tcpdump -r: the tag is in
the frame. Every packet is passed on untouched.

With --mode auto, where XDP would run in generic mode (veth; a driver
without native XDP), received packets are taken at TC ingress instead:
there every frame is already an skb, generic XDP gives each one a new head
first (a kmalloc and a copy: an XDP program that only passes adds 140 ns
per packet on the testbed's flooded CPU), and TC, like tcpdump's own tap,
does not; TC also sees the VLAN tag the kernel keeps in metadata.
--mode generic attaches generic XDP anyway, and so does auto without
CAP_NET_RAW (the filter is then compiled as for a savefile, which expects
the tag in the frame) or without tcx (Linux 6.6). The XDP hook stays free:
an XDP program attached later (a scan's) runs ahead of the capture, and
the summary names it.

When the interface already has an XDP program (someone else's: a DDoS filter,
a load balancer, xdp-loader's; another capture's; a scan's), capture leaves it
attached and unchanged and takes received packets at TC ingress instead (tcx,
which chains any number of programs; clsact below Linux 6.6), after that
program: what it drops, redirects or sends back (XDP_DROP, XDP_REDIRECT,
XDP_TX) is not seen, and the summary says "after the XDP program already
attached". How many it dropped, sent back and redirected over the capture
is read from the driver's own counters (ethtool -S: veth, virtio_net, mlx5,
mvneta, in native mode) and printed after tcpdump's three lines, in
--stats-json ("loss"."xdp_ahead"), the pcapng statistics block's comment and
the metrics (xdpscan_foreign_xdp_packets_total): totals per verdict, never
which packet got which. A program in generic mode, or a driver that counts
no verdicts (Intel's), gives no counts: the output says so instead of
printing zeros. Per-packet verdicts take an fexit program on it (xdpdump's
way), which needs CAP_PERFMON and which a kernel in lockdown
(confidentiality) refuses even to root: xdpscan does not attach one.

Without -w, packets are printed as tcpdump prints them, to stdout whether or
not it is a terminal (never resolving names: tcpdump -nn), with tcpdump's
-v, -e, -x/-X, -q, -t... and -S; -w FILE writes pcapng (or pcap), -w - to
stdout; --print prints as well. The interface is promiscuous while the
capture runs (a packet-socket membership the kernel drops when the process
ends, even on SIGKILL; needs CAP_NET_RAW, else a notice); -p keeps it as it
is and captures only frames to its MAC, broadcast or multicast.

-r FILE (pcap or pcapng, "-": stdin) runs every packet of the file through
the same XDP program with BPF_PROG_RUN, so a filter answers as it would
live; it combines with -w, -c, the text and --count-only. -c N stops after
N written packets; matches read after that are "not written: count
reached", never lost. Ctrl-C ends the capture: the ring is drained and the
file closed properly. -w FILE is written beside FILE (as .FILE.xdpscan-*)
and renamed to FILE when the capture ends: an existing FILE is replaced
only by a complete capture, never by a failed start.

  xdpscan capture -i xs-tgt 'tcp port 80'                  # text, like tcpdump -nn
  xdpscan capture -i xs-tgt -w out.pcapng 'tcp port 80'
  xdpscan capture -i xs-tgt --count-only udp
  xdpscan capture -r out.pcapng -c 10 -e 'tcp[tcpflags] & tcp-syn != 0'
  xdpscan capture -i xs-tgt -i lo -w both.pcapng   # several interfaces, one file, in time order
  xdpscan capture -i xs-tgt --rx pcap -w out.pcap 'tcp port 80'   # the libpcap baseline
  xdpscan capture -i xs-tgt -w ring.pcapng -C 100 -W 10 -z gzip  # rotation`

func runCapture(args []string) error {
	fs := newFlags("capture", captureSynopsis)
	var cores captureCoresOpts
	addCaptureCoresFlags(fs, &cores)
	iface := new(string)
	out := fs.String("w", "", `write packets to FILE ("-": stdout); pcapng unless FILE ends in .pcap or --pcap`)
	forcePcap := fs.Bool("pcap", false, "write classic pcap instead of pcapng")
	precision := fs.String("time-stamp-precision", "micro", "pcap timestamps: micro or nano (pcapng is always nano)")
	snaplen := fs.Uint("s", 262144, "bytes kept per packet, applied in the kernel (0: 262144, as tcpdump)")
	fs.UintVar(snaplen, "snaplen", 262144, "same as -s")
	count := fs.Uint64("c", 0, "stop after this many written packets")
	fs.Uint64Var(count, "count", 0, "same as -c")
	duration := fs.Duration("duration", 0, "stop after this long, counted from when packets are being captured (setup excluded; 0: until Ctrl-C or -c)")
	countOnly := fs.Bool("count-only", false, "copy nothing: count in the kernel (per protocol, per TCP flag class, bytes), print pps/bps live and the totals (not with -w)")
	rx := fs.String("rx", "xdp", "receive path: xdp, or pcap (libpcap on the same filter, the baseline)")
	modeStr := fs.String("mode", "auto", "XDP attach mode: auto (the driver's native mode; where that would be generic, as on veth, TC ingress: see above), native or generic (the kernel skips GRO on the device while a generic program is attached)")
	statsJSON := fs.String("stats-json", "", "write the final counters to FILE as one JSON object")
	var dirOpts directionOpts
	addDirectionFlags(fs, &dirOpts)
	userName := userFlag(fs)
	verbose := verboseFlag(fs)
	var rot rotationOpts
	addRotationFlags(fs, &rot)
	var td tcpdumpOpts
	addTcpdumpFlags(fs, &td)
	var mo metricsOpts
	addMetricsFlags(fs, &mo)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if td.list {
		return listInterfaces(os.Stdout)
	}
	if *verbose {
		loader.VerifierLogFull = true
	}
	runUser, err := lookupRunUser("capture", *userName)
	if err != nil {
		return err
	}
	ringsMode, err := cores.check(*rx)
	if err != nil {
		return err
	}
	if err := cores.checkOutput(*out, *forcePcap); err != nil {
		return err
	}
	if len(cores.ifaces) > 0 {
		*iface = cores.ifaces[0]
	}
	for _, name := range cores.ifaces[min(1, len(cores.ifaces)):] {
		if err := checkCaptureIface(name); err != nil {
			return err
		}
	}
	expr, err := td.filterExpression(rest)
	if err != nil {
		return usageError("capture: %v", err)
	}
	offline := td.readFile != ""
	if err := filter.CheckExpression(expr); err != nil {
		return usageError("capture: %v", err)
	}
	switch {
	case offline && *iface != "":
		return usageError("capture: -r %s reads a file: -i %s has no use with it; drop one of them", td.readFile, *iface)
	case offline && *rx != "xdp":
		return usageError("capture: -r runs the file through the XDP program: --rx %s has no use with it", *rx)
	case offline:
		if td.readFile != "-" {
			if fi, err := os.Stat(td.readFile); err != nil || fi.IsDir() {
				return usageError("capture: -r %s: cannot read it (%v)", td.readFile, err)
			}
			if err := capture.CheckOfflineFile(td.readFile); err != nil {
				return usageError("capture: %v", err)
			}
		}
	case *iface == "":
		return usageError("capture: -i IFACE is required (or -r FILE); see `ip link` or `xdpscan capture -D`")
	}
	if !offline {
		if err := netdev.RequireUp(*iface); err != nil {
			return usageError("capture: %v", err)
		}
	}
	if *duration < 0 {
		return usageError("capture: --duration %s: must be positive (0, the default: until Ctrl-C or -c)", *duration)
	}
	if *countOnly && *out != "" {
		return usageError("capture: --count-only copies no packet, so -w %s would stay empty: drop one of them", *out)
	}
	if *snaplen == 0 {
		*snaplen = loader.MaxSnaplen // tcpdump's -s 0
	}
	if *snaplen > loader.MaxSnaplen {
		return usageError("capture: --snaplen %d: use 0 to %d (0: %d, as tcpdump)", *snaplen, loader.MaxSnaplen, loader.MaxSnaplen)
	}
	ringBytes, err := td.ringBytes()
	if err != nil {
		return usageError("capture: %v", err)
	}
	if td.print && *out == "-" {
		return usageError("capture: --print with -w -: the text and the binary file would share stdout; write the file elsewhere")
	}
	if td.packetBuffered && *out == "" {
		return usageError("capture: -U makes -w write each packet as it comes: give -w FILE")
	}
	if *rx != "xdp" && *rx != "pcap" {
		return usageError("capture: --rx %q: use xdp or pcap", *rx)
	}
	mode, err := loader.ParseMode(*modeStr)
	if err != nil {
		return usageError("capture: %v", err)
	}
	direction, egressHook, err := dirOpts.parse()
	if err != nil {
		return err
	}
	if *precision != "micro" && *precision != "nano" {
		return usageError("capture: --time-stamp-precision %q: micro or nano", *precision)
	}
	if err := rot.check(*out, *countOnly); err != nil {
		return err
	}
	// Like tcpdump: text to stdout, terminal or not, unless -w; --print
	// prints it with -w too.
	printText := !*countOnly && (*out == "" || td.print)
	// Every file is checked now, before setup, and created only once the
	// capture runs (Ready): a typo in the filter, an unknown interface or
	// a failed attach leaves an existing file as it was.
	toFile := !*countOnly && *out != "" && *out != "-" && !rot.on() // rot.check did a rotation's
	if toFile {
		if *statsJSON != "" && outfile.Same(*out, *statsJSON) {
			return usageError("capture: -w %s and --stats-json %s are the same file: one would overwrite the other; name two files", *out, *statsJSON)
		}
		if err := outfile.Check(*out, true); err != nil {
			return usageError("capture: -w %s: cannot write: %v", *out, err)
		}
	}
	if *statsJSON != "" {
		if err := outfile.Check(*statsJSON, true); err != nil {
			return usageError("capture: --stats-json %s: cannot write: %v", *statsJSON, err)
		}
	}
	if err := preflight(captureNeeds(*rx)); err != nil {
		return &exitError{code: 77, err: err} // EX_NOPERM
	}
	if err := mo.listen("capture"); err != nil {
		return err
	}
	defer mo.close()

	var cf *capture.File
	var tw *capture.TextWriter
	var rotation *capture.Rotation
	var write func(*capture.Packet) error
	openOutput := func() error { return nil }
	if printText {
		openOutput = func() error {
			tw = capture.NewTextWriter(os.Stdout, td.textOptions(*precision == "nano"), td.lineBuffered)
			return nil
		}
		write = func(p *capture.Packet) error { return tw.Write(p) }
	}
	if !*countOnly && *out != "" {
		printOnly, printWrite := openOutput, write
		fileName := *iface
		if offline {
			fileName = "file " + td.readFile
		}
		// A rotation opens its files itself (rot.openAfter, below).
		if !rot.on() {
			openOutput = func() error {
				if err := printOnly(); err != nil {
					return err
				}
				var err error
				// After the switch to -Z's user the rename into a directory
				// it cannot write would fail at the end: write the file
				// itself, as tcpdump -Z does.
				cf, err = capture.CreateFile(capture.FileOptions{Path: *out, InPlace: runUser != nil, Pcap: *forcePcap,
					Nano: *precision == "nano", Iface: fileName, RxMode: loader.RxMode(*rx), Filter: expr, Snaplen: uint32(*snaplen),
					MoreIfaces: cores.ifaces[min(1, len(cores.ifaces)):]})
				return err
			}
		}
		write = func(p *capture.Packet) error {
			if rotation != nil {
				if err := rotation.Write(p); err != nil {
					return err
				}
			} else if err := cf.Write(p); err != nil {
				return err
			}
			if td.packetBuffered && cf != nil {
				if err := cf.Flush(); err != nil {
					return err
				}
			}
			if printWrite != nil {
				return printWrite(p)
			}
			return nil
		}
	}
	// -p: only what the interface would take without promiscuous mode
	// (capture.NotPromiscFilter); the file records the user's filter.
	progFilter := expr
	if td.noPromisc && !offline {
		if progFilter, err = capture.NotPromiscFilter(*iface, expr); err != nil {
			return usageError("capture: %v", err)
		}
	}
	var promisc *capture.Promisc
	defer func() { promisc.Close() }()

	// --duration counts from Ready, once packets are being captured: the
	// filter compile and the attach can take seconds, and must not eat it.
	ctx, stop := untilSignalOr(0)
	defer stop()
	ctx, endCapture := context.WithCancel(ctx)
	defer endCapture()
	var durationTimer *time.Timer
	defer func() {
		if durationTimer != nil {
			durationTimer.Stop()
		}
	}()
	cfg := capture.Config{Iface: *iface, Filter: progFilter, Snaplen: uint32(*snaplen), Count: *count,
		CountOnly: *countOnly, RxMode: loader.RxMode(*rx), XDPMode: mode, Direction: direction, EgressHook: egressHook,
		ReadFile: td.readFile, RingBytes: ringBytes, Immediate: td.immediate,
		Reading: func(desc string) {
			fmt.Fprintf(os.Stderr, "reading from file %s, %s\n", td.readFile, desc)
		},
		MoreIfaces: cores.ifaces[min(1, len(cores.ifaces)):], Rings: ringsMode,
		Ready: func() error {
			if *duration > 0 {
				durationTimer = time.AfterFunc(*duration, endCapture)
			}
			if !td.noPromisc && !offline {
				// Before the privileges go: the packet socket needs CAP_NET_RAW.
				var err error
				if promisc, err = capture.EnterPromisc(*iface); err != nil {
					fmt.Fprintf(os.Stderr, "xdpscan: not promiscuous (%v): frames to other hosts are seen only where the device passes them (veth does); -p says this is wanted\n", err)
				}
			}
			if err := openOutput(); err != nil {
				return err
			}
			// tcpdump's words, once packets are really being captured
			if !offline {
				fmt.Fprintf(os.Stderr, "listening on %s, link-type EN10MB (Ethernet), snapshot length %d bytes\n", cores.ifaces.String(), *snaplen)
			}
			return nil
		}}
	stats := &statsFile{path: *statsJSON}
	ready := cfg.Ready
	cfg.Ready = dropAfter(func() error {
		if err := ready(); err != nil {
			return err
		}
		return stats.prepare(runUser)
	}, runUser, rot.chownPath(*out), *statsJSON)
	progress := &capture.Progress{}
	if rot.on() {
		fileName := *iface
		if offline {
			fileName = "file " + td.readFile
		}
		cfg.Ready = rot.openAfter(cfg.Ready, capture.FileOptions{Path: *out, Pcap: *forcePcap, Nano: *precision == "nano",
			Iface: fileName, RxMode: loader.RxMode(*rx), Filter: expr, Snaplen: uint32(*snaplen),
			MoreIfaces: cores.ifaces[min(1, len(cores.ifaces)):]}, progress, &rotation)
	}
	cm := &captureMetrics{progress: progress, iface: *iface, countOnly: *countOnly}
	dropped := cfg.Ready
	cfg.Ready = func() error {
		if err := dropped(); err != nil {
			return err
		}
		mo.serve(cm.collectors()...) // after the drop: see metricsOpts
		return nil
	}
	liveDone := make(chan struct{})
	liveStopped := make(chan struct{})
	go func() { // live line: pps and bps seen and matched
		defer close(liveStopped)
		if *rx != "xdp" || !*countOnly || offline {
			return
		}
		read := func() (loader.Counters, error) { return progress.Counters(), nil }
		liveCounters(liveDone, time.Second, read, func(d loader.Counters, _ time.Duration) {
			fmt.Fprintf(os.Stderr, "%10d pps %9.2f Mbit/s seen, %10d pps matched | %s | ring lost %d\n",
				d.Packets, 8*float64(d.Bytes)/1e6, d.Matched, protocolMix(d), d.RingLost)
		})
	}()
	if offline {
		fmt.Fprintf(os.Stderr, "xdpscan: reading %s through the XDP capture program (BPF_PROG_RUN), filter %s, snaplen %d\n", td.readFile, filter.QuoteShort(expr), *snaplen)
	} else {
		fmt.Fprintf(os.Stderr, "xdpscan: capturing on %s (%s), filter %s, snaplen %d\n", *iface, *rx, filter.QuoteShort(expr), *snaplen)
	}
	st, err := capture.Run(ctx, cfg, progress, write)
	cm.done(st)
	close(liveDone)
	<-liveStopped
	st.Interrupted = ctx.Err() != nil
	if tw != nil {
		if terr := tw.Close(); terr != nil && err == nil && !isBrokenPipe(terr) {
			err = fmt.Errorf("print packets: %w", terr)
		}
	}
	if cf != nil {
		err = cf.Close(st, err)
	}
	if rotation != nil {
		err = rotation.Close(st, err)
		rot.report(rotation, st)
	}
	if se := (*filter.SyntaxError)(nil); errors.As(err, &se) {
		return usageError("capture: %v", err) // a typo, not a failure: exit status 2
	}
	if err != nil {
		return err
	}
	// tcpdump's three lines, then our extra truth.
	fmt.Fprintf(os.Stderr, "%d packets captured\n%d packets received by filter\n%d packets dropped by kernel\n",
		st.Written, st.Matched, st.RingLost)
	for _, a := range st.Loss.XDPAhead {
		fmt.Fprintln(os.Stderr, a.Line())
	}
	rxDesc := "XDP " + st.XDPMode
	if st.RxMode == loader.RxPcap {
		rxDesc = "libpcap"
	} else if st.XDPMode == "" {
		rxDesc = "TC" // beside another XDP program, or -Q out
	}
	notWritten := ""
	if *count > 0 {
		notWritten = fmt.Sprintf(", not written: count reached %d", st.NotWritten)
	}
	where := fmt.Sprintf("%s on %s", rxDesc, st.Interface)
	if len(st.Interfaces) > 1 && st.RxMode == loader.RxXDP {
		where = interfacesDesc(st.Interfaces)
	}
	if offline {
		where = "BPF_PROG_RUN of " + td.readFile
		if st.UserFiltered > 0 {
			where += fmt.Sprintf("; %d frames BPF_PROG_RUN does not take (shorter than 14 bytes, or refused) filtered by libpcap's program in user space", st.UserFiltered)
		}
		if st.Truncated {
			where += "; the file ends inside a packet"
		}
	}
	fmt.Fprintf(os.Stderr, "xdpscan: seen %d, matched %d, written %d%s, ring lost %d, writer lost %d in %.2fs (%s)\n",
		st.Seen, st.Matched, st.Written, notWritten, st.RingLost, st.WriterLost, st.ElapsedS, where)
	if st.RxMode == loader.RxXDP && !offline {
		printDirections(st)
		if st.Inbound != nil {
			fmt.Fprintf(os.Stderr, "xdpscan: received, by protocol (packets): %s\n", protocolMix(st.Counters))
		}
		printCoresSummary(st)
	}
	fmt.Fprintf(os.Stderr, "xdpscan: %s\n", st.Loss)
	if err := stats.write(st); err != nil {
		return err
	}

	return nil
}

// protocolMix is the XDP counters' breakdown of what was seen, TCP by
// flag class.
func protocolMix(c loader.Counters) string {
	return fmt.Sprintf("tcp %d (syn %d, syn-ack %d, rst %d, fin %d, other %d) udp %d icmp %d other %d",
		c.TCP, c.TCPSyn, c.TCPSynAck, c.TCPRst, c.TCPFin, c.TCPOther, c.UDP, c.ICMP+c.ICMPv6, c.OtherL4+c.NonIP+c.L2Errors)
}
