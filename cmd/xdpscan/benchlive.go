package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xdpscan/xdpscan/bench"
	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/testbed"
)

const benchLiveSynopsis = `xdpscan bench capture --live -i IFACE [--duration 60s] [--window 2s] [FILTER]

Measures xdpscan against tcpdump on the traffic IFACE already carries: no
generator, nothing sent. Windows of nothing attached alternate with windows
of tcpdump -w, xdpscan capture -w and xdpscan capture --count-only (none,
tcpdump, none, xdp, none, xdp-count, none, ...), each tool started before
its window and stopped (SIGINT) after it, until --duration. Per tool: the
packets the link received and the tool's own words (received by filter,
captured, dropped by kernel) and the kernel's (the link's rx_dropped, the
softnet backlog's drops); CPU per packet = softirq time of all CPUs
(/proc/stat) + the tool's own time (/proc/PID/stat) over the packets the link
received, and what each tool adds to the windows beside it, with the 95%
bootstrap intervals bench capture uses. Every tool keeps 128 bytes a packet;
-w files go to a scratch directory, deleted after each window.

--live is required on any interface but the testbed's: the XDP windows attach
a program to IFACE (it passes every packet on), and some drivers reset their
rings when a native XDP program is attached or detached (a short
interruption): --xdp-mode generic avoids that.

  xdpscan bench capture --live -i eth0 --duration 60s 'tcp port 443'`

// wantsLive says whether bench capture's arguments ask for the live bench
// (--live, or an interface of one's own).
func wantsLive(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "live" || name == "i") {
			return true
		}
	}
	return false
}

// isTestbedLink says whether name is one end of a testbed's veth pair: its
// name and its fixed MAC address.
func isTestbedLink(name string) bool {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return false
	}
	return (name == testbed.TargetIf && bytes.Equal(ifc.HardwareAddr, testbed.TargetMAC)) ||
		(name == testbed.ScanIf && bytes.Equal(ifc.HardwareAddr, testbed.ScanMAC))
}

func benchCaptureLive(args []string) error {
	fs := newFlags("bench capture", benchLiveSynopsis)
	live := fs.Bool("live", false, "measure on IFACE's own traffic (required unless IFACE is the testbed's)")
	iface := fs.String("i", "", "interface (required)")
	duration := fs.Duration("duration", 60*time.Second, "the whole run, tools' start and stop included (5s to 1h)")
	window := fs.Duration("window", 2*time.Second, "how long each window counts (100ms to 1m)")
	xdpMode := fs.String("xdp-mode", "auto", "attach mode of the XDP captures: auto, native or generic")
	tools := fs.String("tools", strings.Join(bench.LiveTools, ","), "tools to alternate with nothing attached: tcpdump, xdp (-w), xdp-count (--count-only)")
	out := fs.String("out", "", "also write every window's figures to FILE (JSON)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *iface == "" {
		return usageError("bench capture --live: -i IFACE is required; see `ip link`")
	}
	if _, err := net.InterfaceByName(*iface); err != nil {
		return usageError("bench capture --live: interface %s: no such interface; see `ip link`", *iface)
	}
	if !*live && !isTestbedLink(*iface) {
		return usageError("bench capture -i %s: not the testbed's interface; to measure on the traffic %s carries (read-only, nothing sent; the XDP windows attach a program that passes every packet), add --live", *iface, *iface)
	}
	if err := netdev.RequireUp(*iface); err != nil {
		return usageError("bench capture --live: %v", err)
	}
	if *duration < 5*time.Second || *duration > time.Hour {
		return usageError("bench capture --live: --duration %s: use 5s to 1h", *duration)
	}
	if *window < 100*time.Millisecond || *window > time.Minute || 4**window > *duration {
		return usageError("bench capture --live: --window %s: use 100ms to 1m, at most a quarter of --duration", *window)
	}
	if _, err := loader.ParseMode(*xdpMode); err != nil {
		return usageError("bench capture --live: --xdp-mode: %v", err)
	}
	toolList, err := benchTools(*tools, bench.LiveTools)
	if err != nil {
		return err
	}
	expr := strings.Join(rest, " ")
	if err := filter.CheckExpression(expr); err != nil {
		return usageError("bench capture --live: %v", err)
	}
	// Every tool would refuse it, window after window: refuse it once.
	if _, err := filter.Compile(expr, 128); err != nil {
		return usageError("bench capture --live: %v", err)
	}
	if *out != "" {
		if err := outfile.Check(*out, true); err != nil {
			return usageError("bench capture --live: --out %s: cannot write: %v", *out, err)
		}
	}
	if slices.Contains(toolList, "tcpdump") {
		if _, err := exec.LookPath("tcpdump"); err != nil {
			return usageError("bench capture --live: tcpdump is not installed (apt-get install tcpdump), or leave it out: --tools xdp,xdp-count")
		}
	}
	if err := requireCaps(true); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find own binary: %w", err)
	}
	scratch, err := os.MkdirTemp("", "xdpscan-live-")
	if err != nil {
		return fmt.Errorf("bench: scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, runErr := bench.RunLive(ctx, bench.LiveOptions{Self: self, Iface: *iface, Filter: expr, Duration: *duration, Window: *window,
		XDPMode: *xdpMode, Tools: toolList, Dir: scratch, Log: os.Stderr})
	if r != nil {
		bench.WriteLiveTable(os.Stdout, r)
		if *out != "" {
			if err := bench.WriteLiveJSON(*out, r); err != nil {
				return fmt.Errorf("bench capture --live: --out: %w", err)
			}
		}
	}
	if ctx.Err() != nil {
		return &exitError{code: 130, err: fmt.Errorf("bench interrupted: the windows so far are above")}
	}
	return runErr
}
