package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/transmit"
)

const scanSynopsis = `xdpscan scan [flags] TARGET...

TCP SYN, UDP and ICMP echo scan, over IPv4 and IPv6. TARGET is an address,
a CIDR (198.18.0.0/24, 2001:2::/120) or a range (198.18.0.1-198.18.0.50);
both families may be mixed in one scan. An IPv6 target holds at most 2^32
addresses (a /96): wider prefixes are refused with their size, since no
rate could sweep them; list the addresses to probe with -iL instead. The
next hop's MAC comes from the neighbour table, resolved by ARP or IPv6
neighbour discovery when missing. Replies are validated (keyed-hash
cookies) and consumed by an XDP program: the host never answers them with
RST or port unreachable. Each (address, port) that answers is printed
once, as it arrives (whole lines, within 100 ms; a SIGKILL loses at most
that window); nmap's formats (xml, grepable, normal) hold each host whole,
so they are written when the scan ends (Ctrl-C ends it too: an XML file
killed before then is a valid document with no host that says so);
a UDP answer resting on fewer than 32 cookie bits (a service that echoes
nothing: reason ";cookie-bits=N") is held until the end of --wait, and
loses to a conflicting answer that proves more (see --confirm):
  open      SYN-ACK; or a UDP datagram back from the port
  closed    RST; or ICMP port unreachable to a UDP probe
  filtered  another ICMP error quoting the probe (the reason says which:
            host-unreach, admin-prohibited, ...)
  up        echo reply (--ping)
Pairs with no reply are counted as "filtered" in --stats-json, not listed.

Ports use masscan's syntax: -p 22,80,U:53,U:161,T:8000-8100 (plain = TCP).
UDP probes carry a payload the service answers (DNS version.bind, NTP
client, SNMP v2c get sysDescr "public", SSDP M-SEARCH; empty for others).
A closed UDP port answers with ICMP port unreachable, which Linux rate-limits
to about 1000/s per target host (net.ipv4.icmp_ratelimit): watch "closed"
stall in the status line, and use --retries or a lower --rate.

Probes leave by an AF_PACKET socket in sendmmsg batches (--tx socket), or
from the kernel (--tx xdp): the scan's XDP program turns 256 prebuilt
frames a syscall into XDP frames (BPF_PROG_RUN live frames, Linux 5.18),
with no socket buffer; about twice the rate at half the CPU on veth. It
needs a driver with ndo_xdp_xmit, and on veth a peer with NAPI (on the
testbed: testbed up --target-napi); a peer that takes nothing stops the
scan at the first batch with an error, and frames the interface dropped
are counted as tx errors.

When the interface already has an XDP program (someone else's: a DDoS
filter, xdp-loader's; a capture's; another scan's or shard's), the scan
leaves it attached and unchanged and takes its replies at TC ingress
instead (tcx, which chains any number of programs; clsact below Linux
6.6), after that program, with a notice naming it: what it drops or
redirects never reaches the scan. Each scan checks its own cookie key, so
scans chained there each consume their own replies and pass the others
on (counted as invalid cookies: to a scan, another's reply looks like a
forgery); --tx xdp still works. The XDP hook is taken whenever it is free: per
packet the TC variant costs as much for a validated reply (50 ns) and more
for a frame it passes on (21-22 ns against 14, BPF_PROG_RUN), and it runs
after the kernel has built an skb, which native XDP never waits for. TC
is the one hook that chains beside an unknown program where freplace
(libxdp's dispatcher) is refused. --reset's RSTs leave by a redirect to
the interface's egress, except after a generic XDP program with
xdp.frags (someone else's: xdpscan's capture loads without it in generic
mode), which hands TC frames without their MAC header: the scan then
says it sent none.

IANA special-purpose ranges (private, loopback, benchmarking, ...) are
blocked unless lifted with --allow. On the testbed:
  ip netns exec xdpscan-default-scan xdpscan scan 198.18.0.0/20 -p 22,80,443 --allow 198.18.0.0/15
and on an IPv6 testbed (xdpscan testbed up --ipv6):
  ip netns exec xdpscan-default-scan xdpscan scan 2001:2::/112 -p 22,U:53 --ping --allow 2001:2::/48`

type scanFlags struct {
	ports, includeFile, exclude, excludeFile, allow, iface, sourceIP, sourcePort, routerMAC string
	rate                                                                                    float64
	retries, txRelayCPU                                                                     int
	senders                                                                                 int
	rings                                                                                   string
	wait                                                                                    time.Duration
	seed, shards, shard                                                                     uint64
	resume, output, format, statsJSON, status, rx, tx, mode                                 string
	dryRun, reset, udp, ping, pingFirst, connect, appendOutput                              bool
	confirm                                                                                 bool
	habits                                                                                  scanHabits
	user                                                                                    string
	connectTimeout                                                                          time.Duration
	workers                                                                                 int
	metrics                                                                                 metricsOpts
}

func newScanFlags() (*scanFlags, *flag.FlagSet) {
	f := &scanFlags{}
	fs := newFlags("scan", scanSynopsis)
	addSendersFlag(fs, &f.senders)
	addScanRingsFlag(fs, &f.rings)
	fs.StringVar(&f.ports, "p", "", "ports: 22,80,443,8000-8100; U:53,U:161 for UDP (required unless --ping)")
	fs.StringVar(&f.ports, "ports", "", "same as -p")
	fs.BoolVar(&f.udp, "sU", false, "UDP scan: ports given without a T:/U: prefix are UDP")
	fs.BoolVar(&f.ping, "ping", false, "also send an ICMP echo request to every target (alone: host discovery)")
	fs.BoolVar(&f.pingFirst, "ping-first", false, "discover hosts with ICMP echo first, then probe the ports of those that answered")
	fs.BoolVar(&f.connect, "connect", false, "connect scan: the kernel's own TCP/UDP sockets, no privilege needed (chosen\n"+
		"automatically, with a notice, when CAP_NET_RAW/CAP_BPF/CAP_NET_ADMIN are missing)")
	fs.BoolVar(&f.connect, "sT", false, "same as --connect")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", time.Second, "--connect: the least a probe waits for an answer. The wait adapts to the round trips\n"+
		"measured (per family and protocol, as TCP's SRTT + 4 RTTVAR, at least 200ms), and a TCP probe\n"+
		"always waits for the kernel's SYN retransmission at 1s plus that margin (this value until the\n"+
		"first answer): 2s by default at first, about 1.2s on a fast link. No answer: filtered, not listed")
	fs.IntVar(&f.workers, "workers", 0, "--connect: probes in flight at most (default: 2048, within RLIMIT_NOFILE)")
	fs.StringVar(&f.includeFile, "iL", "", "read targets from FILE, one per line, # comments")
	fs.StringVar(&f.includeFile, "include-file", "", "same as -iL")
	fs.StringVar(&f.exclude, "exclude", "", "never scan these CIDRs/ranges (comma-separated)")
	fs.StringVar(&f.excludeFile, "exclude-file", "", "never scan the targets in FILE")
	fs.StringVar(&f.allow, "allow", "", "lift the built-in blocklist for these CIDRs only")
	fs.Float64Var(&f.rate, "rate", 10000, "probes per second, exact on average; at least one an hour (0.000278)")
	fs.StringVar(&f.iface, "i", "", "interface (default: the one the route to the targets uses)")
	fs.StringVar(&f.iface, "interface", "", "same as -i")
	fs.StringVar(&f.sourceIP, "source-ip", "", "source address: IPv4, IPv6, or one of each as V4,V6 (default: the interface's)")
	fs.StringVar(&f.sourcePort, "source-port", "40000-40255", "source port range LO-HI, or one port (the cookie covers the port)")
	fs.StringVar(&f.routerMAC, "router-mac", "", "next hop MAC (default: from the neighbour table)")
	fs.IntVar(&f.retries, "retries", 0, "send every probe this many more times, each pass in a new order\n"+
		"(--connect: probe again, up to this many times, only the pairs that timed out)")
	fs.DurationVar(&f.wait, "wait", 2*time.Second, "keep listening this long after the last probe")
	fs.Uint64Var(&f.seed, "seed", 0, "permutation seed (default: random; same seed, same order)")
	fs.Uint64Var(&f.shards, "shards", 1, "split the scan into this many disjoint shards")
	addShardFlag(fs, f)
	fs.StringVar(&f.resume, "resume", "", "continue the scan saved in FILE: alone, it restores the targets, ports, flags, seed, shard and\n"+
		"output, and appends to that output (pairs already in it are not written again). A scan keeps\n"+
		"FILE up to date while it runs (-o OUT: OUT.resume), every 2s and on Ctrl-C, and removes it when\n"+
		"it completes; a scan to stdout saves ./xdpscan.resume (or xdpscan-N.resume) on Ctrl-C only")
	fs.StringVar(&f.output, "o", "", "write results to FILE (default: stdout); opened once the scan has started, replaced only\n"+
		"when the first result is written; a symbolic link at FILE is refused")
	fs.BoolVar(&f.appendOutput, "append-output", false, "append to the -o file instead of replacing it (nmap's --append-output)")
	fs.StringVar(&f.format, "format", "", "ndjson (masscan -oD), list (-oL), json (-oJ), xml (nmap -oX), grepable (-oG), normal (-oN),\n"+
		"csv, human (default human on stdout, ndjson to a file)")
	fs.StringVar(&f.statsJSON, "stats-json", "", "write the final counters to FILE as one JSON object (written beside FILE, then renamed)")
	fs.StringVar(&f.status, "status", "auto", "live status on stderr: auto (text on a terminal), text, json, none")
	fs.StringVar(&f.rx, "rx", "xdp", "receive path: xdp (validated and consumed in the kernel) or pcap (libpcap, for comparison)")
	fs.StringVar(&f.tx, "tx", "socket", "send path: socket (AF_PACKET sendmmsg batches) or xdp (from the kernel: BPF_PROG_RUN\n"+
		"live frames, one syscall per 256 probes, Linux 5.18+; the driver needs ndo_xdp_xmit, and a veth\n"+
		"peer needs NAPI: a native XDP program or GRO on its end)")
	fs.IntVar(&f.txRelayCPU, "tx-relay-cpu", -1, "with --tx xdp: hand the frames to a kernel thread on CPU N that transmits them (a cpumap\n"+
		"entry, Linux 5.9+), so the sending thread only builds and queues them; it never queues more than\n"+
		"the relay holds (4096), which gives a veth peer the flow control its 256-frame ring lacks, and\n"+
		"the peer's receive path runs on CPU N. -1: transmit from the sending thread")
	fs.StringVar(&f.mode, "mode", "auto", "XDP attach mode: auto, native, generic")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the probes that would be sent, send nothing")
	fs.BoolVar(&f.confirm, "confirm", false, "re-probe, after the wait, each UDP result resting on fewer than 32 cookie bits (a service\n"+
		"that echoes nothing) with a fresh cookie, and print it only if the retry gives the same state")
	fs.BoolVar(&f.reset, "reset", true, "answer each SYN-ACK with a RST built in XDP (XDP_TX), so targets free the half-open\n"+
		"connection and stop retransmitting; --reset=false only drops the reply (more duplicates, lower top rate)")
	fs.StringVar(&f.user, "Z", "", "after setup, drop root and go on as USER (its groups too); files already\n"+
		"created are handed to USER, as tcpdump -Z does (needs root)")
	fs.StringVar(&f.user, "user", "", "same as -Z")
	addScanHabitFlags(fs, f)
	scanHelpGroups(fs)
	addMetricsFlags(fs, &f.metrics)
	return f, fs
}

func runScan(args []string) error {
	f, fs := newScanFlags()
	positional, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if f.habits.verbosity > 0 {
		loader.VerifierLogFull = true
	}
	return runScanFlags(f, fs, positional)
}

func runScanFlags(f *scanFlags, fs *flag.FlagSet, positional []string) error {
	var saved *scan.ResumeFile
	resumePath := f.resume
	if f.resume != "" {
		var err error
		if saved, err = scan.LoadResume(f.resume); err != nil {
			return usageError("%w", err)
		}
		if f, fs, positional, err = mergeResume(saved, fs, positional); err != nil {
			return err
		}
		f.resume = resumePath
	}
	if err := f.habits.check(f, fs); err != nil {
		return err
	}
	if err := f.habits.resolveOutputs(f, fs); err != nil {
		return err
	}
	runUser, err := lookupRunUser("scan", f.user)
	if err != nil {
		return err
	}
	if !f.connect && !f.dryRun {
		if err := rawOrConnect(f); err != nil {
			return err
		}
	}
	if f.format == "" {
		f.format = "human"
		if f.output != "" {
			f.format = "ndjson"
		}
	}
	if _, err := output.NewWriter(io.Discard, f.format); err != nil {
		return usageError("%v", err)
	}
	// The outputs now, again with the resume file by planScanOutputs: a
	// bad path must be refused before scanConfig asks for routes.
	if err := checkScanFiles(f, ""); err != nil {
		return err
	}
	cfg, err := scanConfig(f, positional)
	if err != nil {
		return err
	}
	if saved != nil {
		if err := scan.MatchResume(resumePath, saved, cfg, f.output, f.format); err != nil {
			return usageError("%w", err)
		}
		cfg.Resume = saved.Position
	}
	if f.dryRun {
		return dryRun(cfg)
	}
	if f.habits.verbosity >= 2 {
		printPlan(os.Stderr, cfg)
	}
	// Checkpoints: not for --ping-first (the hosts found are not saved),
	// an XML file (it cannot be appended to),
	// nor for an output that is not a regular file (/dev/null, a FIFO):
	// nothing could be read back from it.
	// Nor with several outputs: the resume file would reopen (and empty)
	// the extra ones.
	checkpoints := !f.pingFirst && !(f.output != "" && !output.Appendable(f.format)) && len(f.habits.extras) == 0
	if fi, err := os.Stat(f.output); f.output != "" && err == nil && !fi.Mode().IsRegular() {
		checkpoints = false
	}
	// A scan to stdout keeps no checkpoints (what it printed cannot be
	// read back, and two such scans from one directory must not share a
	// file): it saves its position on interrupt only, in a free name.
	periodic := checkpoints && (f.output != "" || saved != nil)
	if resumePath == "" && periodic {
		resumePath = scan.DefaultResumePath(f.output)
		if err := outfile.Check(resumePath, true); err != nil {
			// A directory the scan cannot write to: it runs, it just
			// cannot be resumed.
			fmt.Fprintf(os.Stderr, "xdpscan: notice: no resume checkpoints (%s: %v)\n", resumePath, err)
			checkpoints, periodic, resumePath = false, false, ""
		}
	}
	outs, err := planScanOutputs(f, saved, resumePath, periodic)
	if err != nil {
		return err
	}
	outs.meta = outputMeta(cfg, f.connect)
	if cfg.Shards > 1 {
		part := scan.PartOf(cfg)
		outs.part = &part
	}
	if err := f.metrics.listen("scan"); err != nil {
		return err
	}
	defer f.metrics.close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, cutCooldown := context.WithCancel(context.Background())
	defer cutCooldown()
	var cutAt atomic.Pointer[time.Time]
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if !signal.Ignored(syscall.SIGHUP) { // nohup keeps ignoring it
		signal.Notify(sigs, syscall.SIGHUP) // a closed terminal or ssh session: stop and flush like Ctrl-C
	}
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		outs.flush() // what arrived so far is on the page now, whatever comes next
		stdio().printf("interrupted: stopped sending, listening %s for late replies (Ctrl-C again to skip)\n", cfg.Wait)
		cancel()
		if _, ok := <-sigs; ok {
			now := time.Now()
			cutAt.Store(&now)
			cutCooldown()
		}
	}()

	var ck *scan.Checkpointer
	if checkpoints {
		ck = &scan.Checkpointer{Path: resumePath, Flush: outs.sync, Periodic: periodic,
			Saved: scan.ResumeFile{Version: scan.ResumeVersion, Args: savedArgs(fs, positional), Seed: cfg.Seed, Shards: cfg.Shards, Shard: cfg.Shard,
				Retries: cfg.Retries, Targets: scan.DigestTargets(cfg.Targets), Ports: scan.PortsString(cfg.Ports),
				Output: outs.outputAbs, Format: f.format},
			Lag: scan.CheckpointLag(cfg)}
	}
	progress := &scan.Progress{}
	if ck != nil {
		ck.Progress = progress
	}
	cfg.Ready = func() error {
		if err := outs.open(); err != nil {
			return err
		}
		if ck != nil && !ck.Started() {
			// The first checkpoint: a scan killed before the next one can
			// still be resumed (from its start).
			if periodic {
				if err := ck.Save(cfg.Resume); err != nil {
					return fmt.Errorf("resume file: %w", err)
				}
			}
			ck.Start(cfg.Notice)
		}
		return nil
	}
	write := outs.write
	if f.pingFirst {
		up, err := pingPhase(ctx, stop, f, cfg, write)
		if err != nil {
			outs.close(false)
			return err
		}
		if ctx.Err() != nil {
			outs.close(true)
			return &exitError{code: 130, err: fmt.Errorf("interrupted during --ping-first discovery; nothing was port-scanned")}
		}
		if up.Len() == 0 {
			fmt.Fprintf(os.Stderr, "xdpscan: no host answered the echo requests; nothing to port-scan\n")
			return outs.close(true)
		}
		cfg.Targets = up
	}
	status := newStatusLine(f.status, progress)
	status.start()
	stats := &statsFile{path: f.statsJSON}
	ready := cfg.Ready
	cfg.Ready = dropAfter(func() error {
		if err := ready(); err != nil {
			return err
		}
		return stats.prepare(runUser)
	}, runUser, f.output, f.statsJSON, resumePath)
	sm := &scanMetrics{progress: progress, iface: cmp.Or(cfg.Path.Iface, cfg.Path6.Iface)}
	dropped := cfg.Ready
	cfg.Ready = func() error {
		if err := dropped(); err != nil {
			return err
		}
		f.metrics.serve(sm.collectors()...) // after the drop: see metricsOpts
		return nil
	}
	st, err := scan.Run(ctx, stop, cfg, progress, write)
	sm.done(st)
	status.stop()
	if ck != nil {
		ck.Stop()
	}
	started, sent := outs.opened, progress.Sent.Load() > 0
	// A run that sent nothing (it failed, or was interrupted during setup)
	// leaves an existing -o file as it was.
	writeErr := outs.close(sent || err == nil && !st.Interrupted)
	if err == nil && st.Interrupted && !sent && saved == nil {
		if periodic {
			scan.RemoveResume(resumePath)
		}
		return &exitError{code: 130, err: fmt.Errorf("interrupted before the first probe: nothing to resume")}
	}
	if err != nil {
		if periodic && started {
			if pos, ok := progress.Position(); ok && pos == cfg.Resume && saved == nil {
				scan.RemoveResume(resumePath) // nothing sent: nothing to resume
			} else {
				err = fmt.Errorf("%w\n(the scan can continue from its last checkpoint: xdpscan scan --resume %s)", err, resumePath)
			}
		}
		return err
	}
	if writeErr != nil {
		return fmt.Errorf("write results: %w", writeErr)
	}
	if outs.skipped > 0 {
		fmt.Fprintf(os.Stderr, "xdpscan: %d results already in %s (probes sent again after the last checkpoint) were not written twice\n",
			outs.skipped, f.output)
	}
	st.Part = scan.PartOf(cfg)
	if err := stats.write(st); err != nil {
		return err
	}

	rxDesc := "XDP " + st.XDPMode
	if st.RxHook != "" {
		rxDesc = st.RxHook
	}
	if st.TxMode == transmit.ModeXDP {
		rxDesc = "sent from XDP, " + rxDesc
		if st.TxRelayCPUS > 0 {
			rxDesc = fmt.Sprintf("sent from XDP through CPU %d's relay (%.2f CPU-s: the transmit and the peer's receive path), %s",
				f.txRelayCPU, st.TxRelayCPUS, strings.TrimPrefix(rxDesc, "sent from XDP, "))
		}
	}
	switch st.RxMode {
	case loader.RxPcap:
		rxDesc = "libpcap"
	case scan.RxConnect:
		c := st.Connect
		rxDesc = fmt.Sprintf("connect, %d workers, %d timeouts, %d errors", c.Workers, c.Timeouts, c.Errors)
		if c.FirstError != "" {
			rxDesc += " (first: " + c.FirstError + ")"
		}
	}
	fmt.Fprintf(os.Stderr, "xdpscan: %d probes in %.2fs (%.0f/s), %s, %d duplicates, %d rx lost, %d tx errors (%s on %s)\n",
		st.ProbesSent, st.SendS, st.SendPPS, foundSummary(st), st.Duplicates, st.RingLost, st.TxErrors, rxDesc, st.Interface)
	if st.UDPNoReply > 0 {
		fmt.Fprintf(os.Stderr, "xdpscan: %d UDP probes got no answer (open|filtered): the service ignored the payload, a firewall dropped it,\n"+
			"  or the target rate-limited ICMP port unreachable (Linux: net.ipv4.icmp_ratelimit, a burst of 6 then 1/s per scanner;\n"+
			"  icmp_msgs_per_sec 1000 in all). --retries N or a lower --rate recovers closed ports from such a target.\n", st.UDPNoReply)
	}
	done := st.Resume == nil || st.Resume.Pass > uint64(cfg.Retries)
	if st.Interrupted && ck != nil && (!done || cutAt.Load() != nil) {
		pos := *st.Resume
		if t := cutAt.Load(); t != nil {
			// The cooldown was cut short: replies to the last probes may
			// be lost, so continue from the last position whose replies
			// surely came in (pairs after it are probed again).
			if p, ok := ck.SafeAt(*t); ok {
				pos = p
			} else {
				pos = cfg.Resume
			}
		}
		if !periodic {
			resumePath = scan.FreeResumePath()
			ck.Path = resumePath
		}
		if err := ck.Save(pos); err != nil {
			return fmt.Errorf("interrupted, and could not write the resume file: %w", err)
		}
		return &exitError{code: 130, err: fmt.Errorf("interrupted after %d of %d probes; continue with: xdpscan scan --resume %s",
			st.ProbesSent, st.ProbesTotal, resumePath)}
	}
	if periodic {
		if err := scan.RemoveResume(resumePath); err != nil {
			return fmt.Errorf("the scan completed, but its resume file could not be removed: %w", err)
		}
	}
	if st.Interrupted && !done {
		return &exitError{code: 130, err: fmt.Errorf("interrupted after %d of %d probes (this scan cannot be resumed: rerun it)", st.ProbesSent, st.ProbesTotal)}
	}
	return nil
}

// foundSummary is "3 open, 5 closed", with the filtered and up counts when
// there are any.
func foundSummary(st scan.Stats) string {
	s := fmt.Sprintf("%d open, %d closed", st.Open, st.Closed)
	if st.FilteredICMP > 0 {
		s += fmt.Sprintf(", %d filtered by ICMP", st.FilteredICMP)
	}
	if st.Up > 0 {
		s += fmt.Sprintf(", %d up", st.Up)
	}
	return s
}

// pingPhase sends one echo request to every target (--ping-first) and
// returns the hosts that answered. Their "up" lines are written as they come.
func pingPhase(ctx, stop context.Context, f *scanFlags, cfg scan.Config, write func(scan.Result)) (targets.RangeSet, error) {
	if cfg.Resume != (scan.Position{}) {
		return targets.RangeSet{}, usageError("--resume cannot continue a --ping-first scan: rerun it")
	}
	progress := &scan.Progress{}
	status := newStatusLine(f.status, progress)
	status.start()
	up, st, err := scan.PingFirst(ctx, stop, cfg, progress, write)
	status.stop()
	if err != nil {
		return targets.RangeSet{}, err
	}
	fmt.Fprintf(os.Stderr, "xdpscan: discovery: %d echo requests in %.2fs, %d hosts up\n", st.ProbesSent, st.SendS, st.Up)
	return up, nil
}

func scanConfig(f *scanFlags, positional []string) (scan.Config, error) {
	var spec targets.TargetSpec
	for _, p := range positional {
		rs, err := targets.ParseTargetList(p)
		if err != nil {
			return scan.Config{}, usageError("%v", err)
		}
		spec.Include = append(spec.Include, rs...)
	}
	for _, file := range []struct {
		name string
		into *[]targets.Range
	}{{f.includeFile, &spec.Include}, {f.excludeFile, &spec.Exclude}} {
		if file.name == "" {
			continue
		}
		fh, err := os.Open(file.name)
		if err != nil {
			return scan.Config{}, usageError("%v", err)
		}
		rs, err := targets.ReadTargets(fh, file.name)
		fh.Close()
		if err != nil {
			return scan.Config{}, usageError("%v", err)
		}
		*file.into = append(*file.into, rs...)
	}
	var err error
	if spec.Exclude, err = appendList(spec.Exclude, f.exclude, "--exclude"); err != nil {
		return scan.Config{}, err
	}
	if spec.Allow, err = appendList(nil, f.allow, "--allow"); err != nil {
		return scan.Config{}, err
	}
	targets, err := spec.Resolve()
	if err != nil {
		return scan.Config{}, usageError("%v", err)
	}
	ports, err := portsFromFlags(f)
	if err != nil {
		return scan.Config{}, err
	}
	if !(f.rate >= scan.MinRate) || math.IsInf(f.rate, 0) {
		return scan.Config{}, usageError("--rate %v: must be a number of probes per second from %.6f (one an hour) up", f.rate, scan.MinRate)
	}
	if f.wait < 0 {
		return scan.Config{}, usageError("--wait %v: must be 0 or more", f.wait)
	}
	if f.retries < 0 {
		return scan.Config{}, usageError("--retries %d: must be 0 or more", f.retries)
	}
	if f.workers < 0 {
		return scan.Config{}, usageError("--workers %d: must be 0 (the default) or more", f.workers)
	}
	if f.connectTimeout <= 0 {
		return scan.Config{}, usageError("--connect-timeout %v: must be positive", f.connectTimeout)
	}
	mode, err := loader.ParseMode(f.mode)
	if err != nil {
		return scan.Config{}, usageError("%v", err)
	}
	if err := validStatus(f.status); err != nil {
		return scan.Config{}, err
	}
	if f.rx != "xdp" && f.rx != "pcap" {
		return scan.Config{}, usageError("--rx %q: use xdp (replies consumed in the kernel) or pcap (libpcap, the baseline)", f.rx)
	}
	if f.tx != "socket" && f.tx != "xdp" {
		return scan.Config{}, usageError("--tx %q: use socket (AF_PACKET) or xdp (BPF_PROG_RUN live frames)", f.tx)
	}
	if f.txRelayCPU >= 0 && f.tx != "xdp" {
		return scan.Config{}, usageError("--tx-relay-cpu relays the frames --tx xdp sends from the kernel: add --tx xdp")
	}
	if f.txRelayCPU < -1 {
		return scan.Config{}, usageError("--tx-relay-cpu %d: want a CPU number, or -1 for none", f.txRelayCPU)
	}
	lo, hi, err := parseSourcePorts(f.sourcePort)
	if err != nil {
		return scan.Config{}, err
	}
	src4, src6, err := parseSourceIPs(f.sourceIP)
	if err != nil {
		return scan.Config{}, err
	}
	var mac net.HardwareAddr
	if f.routerMAC != "" {
		if mac, err = net.ParseMAC(f.routerMAC); err != nil || len(mac) != 6 {
			return scan.Config{}, usageError("--router-mac %q: not a MAC address", f.routerMAC)
		}
		if err := unicastMAC(mac); err != nil {
			return scan.Config{}, usageError("--router-mac %s: %v", f.routerMAC, err)
		}
	}
	if f.iface != "" {
		if _, err := net.InterfaceByName(f.iface); err != nil {
			return scan.Config{}, usageError("interface %s: no such interface; see `ip link`", f.iface)
		}
	}
	key, err := probe.NewCookieKey()
	if err != nil {
		return scan.Config{}, err
	}
	if err := checkSenders(f); err != nil {
		return scan.Config{}, err
	}
	rings, err := checkScanRings(f)
	if err != nil {
		return scan.Config{}, err
	}
	seed := scan.Seed(f.seed, key)
	cfg := scan.Config{Senders: f.senders, Rings: rings, Targets: targets, Ports: ports, Rate: f.rate, SportLo: lo, SportHi: hi,
		Retries: f.retries, Wait: f.wait, Seed: seed, Shards: f.shards, Shard: f.shard, XDPMode: mode, RxMode: loader.RxMode(f.rx), Tx: transmit.Mode(f.tx), Reset: f.reset, Key: key,
		TxRelay: f.txRelayCPU >= 0, TxRelayCPU: f.txRelayCPU,
		Connect: f.connect, ConnectTimeout: f.connectTimeout, Workers: f.workers, Confirm: f.confirm,
		Notice: func(msg string) { stdio().printf("xdpscan: notice: %s\n", msg) }}
	// Twice: what the flags alone get wrong before asking the kernel for
	// routes and neighbours, then what the paths found add (one interface
	// for both families).
	if err := cfg.Validate(); err != nil {
		return cfg, usageError("%v", err)
	}
	if !f.connect { // the kernel routes connect probes itself
		if first, ok := targets.First(false); ok {
			if cfg.Path, err = route.Resolve(first, f.iface, src4, mac); err != nil {
				return scan.Config{}, routeError(err)
			}
		}
		if first, ok := targets.First(true); ok {
			if cfg.Path6, err = route.Resolve(first, f.iface, src6, mac); err != nil {
				return scan.Config{}, routeError(err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError("%v", err)
	}
	if err := f.habits.setAdapterMAC(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// routeError makes a path failure the user's -i caused a usage error.
func routeError(err error) error {
	var ie *route.InterfaceError
	if errors.As(err, &ie) {
		return usageError("%v", err)
	}
	return err
}

// portsFromFlags turns -p, -sU and --ping into the scan's probe list.
func portsFromFlags(f *scanFlags) ([]targets.Port, error) {
	if f.pingFirst && f.ports == "" {
		return nil, usageError("--ping-first needs -p PORTS to scan on the hosts that answer (--ping alone only discovers)")
	}
	if f.ports == "" && f.habits.topPorts == 0 && !f.ping {
		return nil, usageError("-p PORTS or --ping is required (example: -p 22,80,443,U:53)")
	}
	var ports []targets.Port
	if f.ports != "" || f.habits.topPorts > 0 {
		spec := f.ports
		if f.habits.topPorts > 0 {
			var err error
			if spec, err = f.habits.topPortSpec(f.udp && !f.habits.both); err != nil {
				return nil, err
			}
			if f.habits.both {
				tcp, err := f.habits.topPortSpec(false)
				if err != nil {
					return nil, err
				}
				spec = "U:" + strings.ReplaceAll(spec, ",", ",U:") + ",T:" + strings.ReplaceAll(tcp, ",", ",T:")
			}
		}
		spec = allPorts(spec)
		switch {
		case f.habits.both && f.habits.topPorts == 0:
			spec = defaultProto(spec, "U") + "," + defaultProto(spec, "T")
		case f.udp:
			spec = defaultProto(spec, "U")
		}
		var err error
		if ports, err = targets.ParsePortSpec(spec); err != nil {
			return nil, usageError("-p: %v", err)
		}
	}
	if f.ping && !f.pingFirst {
		ports = append(ports, targets.Echo)
	}
	return ports, nil
}

// defaultProto prefixes the items of a port list that have no protocol
// with proto ("T" or "U") and a colon.
func defaultProto(spec, proto string) string {
	items := strings.Split(spec, ",")
	for i, it := range items {
		it = strings.TrimSpace(it)
		if len(it) < 2 || it[1] != ':' {
			items[i] = proto + ":" + it
		}
	}
	return strings.Join(items, ",")
}

// parseSourceIPs reads --source-ip: an IPv4 address, an IPv6 one, or one of
// each separated by a comma.
func parseSourceIPs(s string) (src4, src6 netip.Addr, err error) {
	if s == "" {
		return
	}
	for _, item := range strings.Split(s, ",") {
		a, perr := netip.ParseAddr(strings.TrimSpace(item))
		switch {
		case perr != nil:
			return src4, src6, usageError("--source-ip %q: not an IP address", item)
		case a.Is4() && !src4.IsValid():
			src4 = a
		case a.Is6() && !a.Is4In6() && a.Zone() == "" && !src6.IsValid():
			src6 = a
		default:
			return src4, src6, usageError("--source-ip %q: give at most one IPv4 and one (global, unzoned) IPv6 address", s)
		}
	}
	return
}

func appendList(into []targets.Range, s, flag string) ([]targets.Range, error) {
	if s == "" {
		return into, nil
	}
	rs, err := targets.ParseTargetList(s)
	if err != nil {
		return nil, usageError("%s: %v", flag, err)
	}
	return append(into, rs...), nil
}

// parseSourcePorts reads --source-port: one port, or one range LO-HI (a
// list is not a range: "40000-40000,1" once read as 1-40000).
func parseSourcePorts(s string) (uint16, uint16, error) {
	if strings.Contains(s, ",") {
		return 0, 0, usageError("--source-port %q: give one range LO-HI (or one port), not a list", s)
	}
	ports, err := targets.ParsePorts(s)
	if err != nil {
		return 0, 0, usageError("--source-port: %v", err)
	}
	return ports[0], ports[len(ports)-1], nil
}

func dryRun(cfg scan.Config) error {
	if cfg.Connect {
		fmt.Printf("# %d probes on kernel sockets (--connect), one pass, re-probing what times out up to %d more time(s), shard %d/%d\n",
			cfg.TotalProbes(), cfg.Retries, cfg.Shard, cfg.Shards)
		return scan.EachProbe(cfg, func(addr netip.Addr, port targets.Port, _ uint16) error {
			_, err := fmt.Printf("%s/%s\n", netip.AddrPortFrom(addr, port.Num), targets.ProtoName(port.Proto))
			return err
		})
	}
	fmt.Printf("# %d probes, source ports %d-%d, %d pass(es), shard %d/%d\n",
		cfg.TotalProbes(), cfg.SportLo, cfg.SportHi, cfg.Retries+1, cfg.Shard, cfg.Shards)
	for _, p := range []route.Path{cfg.Path, cfg.Path6} {
		if p.Src.IsValid() {
			fmt.Printf("# from %s (%s, next hop %s %s)\n", p.Src, p.Iface, p.NextHop, p.RouterMAC)
		}
	}
	return scan.EachProbe(cfg, func(addr netip.Addr, port targets.Port, sport uint16) error {
		var err error
		switch port.Proto {
		case targets.ProtoICMP:
			_, err = fmt.Printf("%s icmp echo\n", addr)
		case targets.ProtoUDP:
			_, err = fmt.Printf("%s/udp (%s) from port %d\n", netip.AddrPortFrom(addr, port.Num), probe.PayloadFor(port.Num).Name, sport)
		default:
			_, err = fmt.Printf("%s from port %d\n", netip.AddrPortFrom(addr, port.Num), sport)
		}
		return err
	})
}
