package main

import (
	"encoding/json"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"os"
	"time"

	"github.com/xdpscan/xdpscan/loader"
)

func runMonitor(args []string) error {
	fs := newFlags("monitor", "xdpscan monitor -i IFACE[,IFACE...] [--duration D] [--mode auto|native|generic] [--metrics-addr HOST:PORT]\n\n"+
		"Attaches xdpscan's XDP parser to each IFACE (it passes every packet, copies none) and prints\n"+
		"per-protocol counters once per interval until --duration or Ctrl-C. With --metrics-addr it is\n"+
		"a Prometheus exporter (deploy/xdpscan-monitor.service) and prints no interval lines unless\n"+
		"--interval is given.")
	var ifaces ifaceList
	fs.Var(&ifaces, "i", "interface to attach to (required); several: -i A -i B or -i A,B")
	fs.Var(&ifaces, "interface", "same as -i")
	modeStr := fs.String("mode", "auto", "XDP attach mode: auto, native or generic")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	interval := fs.Duration("interval", time.Second, "how often to print")
	asJSON := fs.Bool("json", false, "print NDJSON lines instead of text")
	userName := userFlag(fs)
	verbose := verboseFlag(fs)
	var mo metricsOpts
	addMetricsFlags(fs, &mo)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *verbose {
		loader.VerifierLogFull = true
	}
	runUser, err := lookupRunUser("monitor", *userName)
	if err != nil {
		return err
	}
	if len(ifaces) == 0 {
		ifaces = ifaceList{""} // attachFlags says -i is required
	}
	var mode loader.Mode
	for _, iface := range ifaces {
		if mode, err = attachFlags("monitor", iface, *modeStr); err != nil {
			return err
		}
	}
	if *duration < 0 {
		return usageError("monitor: --duration %s: must be positive (0, the default: until Ctrl-C)", *duration)
	}
	if *interval <= 0 {
		return usageError("monitor: --interval must be positive")
	}
	printLive := true
	if mo.addr != "" {
		printLive = false
		fs.Visit(func(f *flag.Flag) { printLive = printLive || f.Name == "interval" })
	}
	if err := preflight(monitorNeeds); err != nil {
		return &exitError{code: 77, err: err} // EX_NOPERM
	}
	if err := mo.listen("monitor"); err != nil {
		return err
	}
	defer mo.close()

	var progs []*loader.Scan
	for _, iface := range ifaces {
		prog, err := loader.LoadScan(loader.ScanConfig{SourcePortLo: 1, SourcePortHi: 0xffff})
		if err != nil {
			return err
		}
		defer prog.Close()
		att, err := loader.Attach(prog.Program(), iface, mode)
		if err != nil {
			return err
		}
		defer att.Close()
		progs = append(progs, prog)
		fmt.Fprintf(os.Stderr, "monitoring %s (XDP %s mode); Ctrl-C to stop\n", att.Interface, att.Mode)
	}
	if err := dropAfter(nil, runUser)(); err != nil {
		return err
	}
	mo.serve(monitorMetrics(progs, ifaces)...)

	ctx, stop := untilSignalOr(*duration)
	defer stop()
	read := func() (loader.Counters, error) { // the sum over the interfaces
		var sum loader.Counters
		for _, p := range progs {
			c, err := p.Counters()
			if err != nil {
				return sum, err
			}
			sum = sum.Add(c)
		}
		return sum, nil
	}
	start := time.Now()
	if printLive {
		err = liveCounters(ctx.Done(), *interval, read, func(growth loader.Counters, elapsed time.Duration) {
			printMonitor(os.Stderr, *asJSON, "interval", growth, elapsed)
		})
		if err != nil {
			return err
		}
	} else {
		<-ctx.Done()
	}
	c, err := read()
	if err != nil {
		return err
	}
	printMonitor(os.Stdout, *asJSON, "total", c, time.Since(start))
	return nil
}

func printMonitor(w io.Writer, asJSON bool, kind string, c loader.Counters, d time.Duration) {
	secs := d.Seconds()
	if asJSON {
		json.NewEncoder(w).Encode(struct {
			Kind     string  `json:"kind"`
			Seconds  float64 `json:"seconds"`
			PPS      float64 `json:"pps"`
			BPS      float64 `json:"bps"`
			Counters loader.Counters
		}{kind, secs, float64(c.Packets) / secs, 8 * float64(c.Bytes) / secs, c})
		return
	}
	fmt.Fprintf(w, "%-8s %6.1fs %10.0f pps %8.2f Mbit/s | ipv4 %d ipv6 %d other %d | tcp %d udp %d icmp %d icmp6 %d | vlan %d frag %d errors %d\n",
		kind, secs, float64(c.Packets)/secs, 8*float64(c.Bytes)/secs/1e6, c.IPv4, c.IPv6, c.NonIP,
		c.TCP, c.UDP, c.ICMP, c.ICMPv6, c.VLAN, c.Fragments, c.ParseErrors)
}
