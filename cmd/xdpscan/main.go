// Command xdpscan is a packet capture and port scanning engine accelerated
// by XDP. Run `xdpscan help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// exitError carries a specific exit status out of run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is bad input: exit status 2, like flag's.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	stopProfile := startProfile()
	err := run(os.Args[1:])
	stopProfile()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if !errors.Is(err, errHelpShown) {
			fmt.Fprintf(os.Stderr, "xdpscan: %v\n", err)
		}
		os.Exit(code)
	}
}

var errHelpShown = &exitError{code: 0, err: errors.New("help shown")}

const usage = `xdpscan: port scanning and packet capture accelerated by eBPF/XDP.

Usage:
  xdpscan <command> [flags] [arguments]

Commands:
  scan TARGET... -p PORTS  TCP SYN, UDP and ICMP echo probes, replies validated
                           and consumed in XDP
  testbed up|down|status   a private two-namespace test network (198.18.0.0/15)
  capture -i IFACE [EXPR]  capture at XDP with a tcpdump filter run in the
                           kernel; pcapng out
  monitor -i IFACE         attach the XDP parser and show live counters
  merge PART...            put a sharded scan's outputs together: checked,
                           missing shards named, de-duplicated
  bench scan|capture|flood|xdp-pass|xdp-toggle
                           xdpscan vs masscan, zmap, tcpdump and libpcap on the
                           testbed (table, JSON, plots), and the tools they use
  version                  version, kernel against the floors, and what this
                           host lacks for XDP (xdpscan --version: the first)
  completion bash|zsh|fish a shell completion script (make install adds them)

Every command takes --help (or: xdpscan help COMMAND). Flags are GNU-style
(--rate 5000, --rate=5000, -p80) and take masscan's and nmap's spellings
(-p-, -oX FILE, --max-rate, -e IFACE, --top-ports N); a time takes seconds
(--wait 2) or a Go duration (--wait 500ms).

Root is not needed: scan needs CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW
(--connect none), capture and monitor CAP_BPF and CAP_NET_ADMIN;
` + "`xdpscan version`" + ` says what can run here. Once set up, each drops them all.

Try it on the built-in testbed:
  xdpscan testbed up
  ip netns exec xdpscan-default-scan \
      xdpscan scan 198.18.0.0/20 -p 22,80,443,8080,9000 --allow 198.18.0.0/15
  xdpscan testbed down
`

func run(args []string) error {
	if len(args) == 0 {
		return usageError("no command given: say %s (see `xdpscan --help`)", commandList())
	}
	switch args[0] {
	case "help", "-h", "--help":
		if len(args) > 1 && args[0] == "help" && args[1] != "help" {
			return run([]string{args[1], "--help"})
		}
		fmt.Print(usage)
		return nil
	case "--version", "-V":
		if len(args) > 1 {
			return usageError("--version takes nothing; `xdpscan version` also says what this host can run")
		}
		for _, l := range versionLines() {
			fmt.Println(l)
		}
		return nil
	case "version":
		return runVersion(args[1:])
	case "completion":
		return runCompletion(args[1:])
	case "__complete", "__completeNoDesc":
		return runCobraComplete(args)
	case "man":
		return runMan(args[1:])
	case "testbed":
		return runTestbed(args[1:])
	case "scan":
		return runScan(args[1:])
	case "capture":
		return runCapture(args[1:])
	case "monitor":
		return runMonitor(args[1:])
	case "bench":
		return runBench(args[1:])
	case "merge":
		return runMerge(args[1:])
	}
	if strings.HasPrefix(args[0], "-") {
		return usageError("%s: flags come after the command: xdpscan COMMAND %s ... (commands: %s; see `xdpscan --help`)",
			args[0], args[0], commandList())
	}
	if near := nearestWord(args[0], commands); near != "" {
		return usageError("unknown command %q: did you mean %s? (see `xdpscan --help`)", args[0], near)
	}
	return usageError("unknown command %q: say %s (see `xdpscan --help`)", args[0], commandList())
}

// commands are the subcommands, as the top-level help lists them.
var commands = []string{"scan", "testbed", "capture", "monitor", "merge", "bench", "version", "completion"}

func commandList() string {
	return strings.Join(commands[:len(commands)-1], ", ") + " or " + commands[len(commands)-1]
}

// nearestWord is the word of words at most 2 edits from w (1 for short
// ones), or "".
func nearestWord(w string, words []string) string {
	limit := 1
	if len(w) >= 5 {
		limit = 2
	}
	best, bestD := "", limit+1
	for _, c := range words {
		if d := editDistance(w, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// startProfile writes a CPU profile of the whole command to the file named
// by XDPSCAN_CPUPROFILE, for `go tool pprof` (docs/performance.md).
func startProfile() (stop func()) {
	path := os.Getenv("XDPSCAN_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpscan: XDPSCAN_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "xdpscan: XDPSCAN_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// untilSignalOr is a context that ends on SIGINT or SIGTERM, or after d when
// d > 0 (--duration).
func untilSignalOr(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stopSignals
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); stopSignals() }
}
