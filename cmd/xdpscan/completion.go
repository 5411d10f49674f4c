package main

// Shell completion and man pages, from the same flag sets the commands
// parse: a cobra command tree is built from them only for these (the
// commands themselves parse with parseFlags). Cobra's completion scripts
// ask the binary (xdpscan __complete ARGS...) for the candidates, so they
// stay right as flags change.

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/output"
)

// collectFlags, when set, receives a command's flag set instead of
// parseFlags parsing it (the command then returns errHelpShown, having
// done nothing).
var collectFlags func(*flag.FlagSet)

// commandFlagSet is the flag set command run registers.
func commandFlagSet(run func([]string) error, args ...string) *flag.FlagSet {
	var got *flag.FlagSet
	collectFlags = func(fs *flag.FlagSet) { got = fs }
	defer func() { collectFlags = nil }()
	run(args)
	return got
}

type treeCommand struct {
	path  []string // under xdpscan
	short string
	run   func([]string) error
	args  []string
}

// commandTree is every command with flags, for completion and man pages.
var commandTree = []treeCommand{
	{[]string{"scan"}, "TCP SYN, UDP and ICMP echo probes; replies validated and consumed in XDP", runScan, nil},
	{[]string{"capture"}, "capture at XDP with a tcpdump filter run in the kernel; pcapng out", runCapture, nil},
	{[]string{"monitor"}, "attach the XDP parser and show live per-protocol counters", runMonitor, nil},
	{[]string{"merge"}, "put a sharded scan's outputs together: checked, missing shards named, de-duplicated", runMerge, nil},
	{[]string{"testbed", "up"}, "bring up a private two-namespace test network (198.18.0.0/15)", runTestbed, []string{"up"}},
	{[]string{"testbed", "down"}, "remove a testbed", runTestbed, []string{"down"}},
	{[]string{"testbed", "status"}, "a testbed's configuration, ground truth and counters", runTestbed, []string{"status"}},
	{[]string{"bench", "scan"}, "xdpscan vs masscan and zmap on the testbed", benchScan, nil},
	{[]string{"bench", "capture"}, "xdpscan capture vs tcpdump and libpcap on the testbed", benchCapture, nil},
	{[]string{"bench", "flood"}, "the benchmarks' packet generator (testbed only)", benchFlood, nil},
	{[]string{"bench", "xdp-pass"}, "hold an XDP program that only passes packets", benchXDPPass, nil},
	{[]string{"bench", "xdp-toggle"}, "attach and detach a program in windows while a flood runs", benchXDPToggle, nil},
	{[]string{"version"}, "version, kernel against the floors, and what this host lacks for XDP", runVersion, nil},
}

// cobraTree builds the cobra commands from the flag sets.
func cobraTree() *cobra.Command {
	root := &cobra.Command{Use: "xdpscan", Short: "port scanning and packet capture accelerated by eBPF/XDP",
		Long: usage, Version: versionString(), SilenceErrors: true, SilenceUsage: true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true}}
	root.SetVersionTemplate("{{.Version}}\n")
	parents := map[string]*cobra.Command{"": root}
	for _, tc := range commandTree {
		parentKey := ""
		for i, name := range tc.path {
			key := parentKey + " " + name
			if _, ok := parents[key]; !ok {
				c := &cobra.Command{Use: name, SilenceErrors: true, SilenceUsage: true}
				if i == len(tc.path)-1 {
					fs := commandFlagSet(tc.run, tc.args...)
					c.Short = tc.short
					if fs != nil {
						syn, _ := synopses.Load(fs)
						if s, ok := syn.(string); ok {
							c.Long = s
						}
						c.Flags().SortFlags = false
						c.Flags().AddFlagSet(cobraFlags(fs))
					}
					c.Run = func(*cobra.Command, []string) {}
					completeValues(c)
				} else {
					c.Short = name + " commands"
				}
				parents[parentKey].AddCommand(c)
				parents[key] = c
			}
			parentKey = key
		}
	}
	return root
}

// cobraFlags is fs as cobra shows it: each alias group one flag with its
// one-letter name as the shorthand, other long names as their own flags.
func cobraFlags(fs *flag.FlagSet) *flag.FlagSet {
	out := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	out.SortFlags = false
	for _, e := range helpEntries(fs) {
		var short string
		var longs []*flag.Flag
		for _, fl := range e.names {
			if len(fl.Name) == 1 && short == "" {
				short = fl.Name
			} else {
				longs = append(longs, fl)
			}
		}
		main := e.names[0]
		if len(longs) == 0 { // a one-letter flag alone: -F, -n
			longs = []*flag.Flag{main}
			short = ""
		}
		for i, fl := range longs {
			nf := *fl
			nf.Usage = main.Usage
			nf.Annotations = nil
			nf.Shorthand = ""
			if i == 0 {
				nf.Shorthand = short
			} else {
				nf.Usage = "same as " + dispName(longs[0].Name)
			}
			out.AddFlag(&nf)
		}
	}
	return out
}

// completeValues offers the values of the flags that have a fixed set.
func completeValues(c *cobra.Command) {
	fixed := map[string][]string{
		"mode": {"auto", "native", "generic"}, "status": {"auto", "text", "json", "none"},
		"rx": {"xdp", "pcap"}, "tx": {"socket", "xdp"}, "format": output.Formats,
		"target": {"kernel", "xdp", "both"}, "time-stamp-precision": {"micro", "nano"},
	}
	for name, values := range fixed {
		if c.Flags().Lookup(name) != nil {
			values := values
			c.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return values, cobra.ShellCompDirectiveNoFileComp
			})
		}
	}
	for _, name := range []string{"interface", "i"} {
		if fl := c.Flags().Lookup(name); fl != nil {
			c.RegisterFlagCompletionFunc(fl.Name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				var names []string
				ifs, _ := net.Interfaces()
				for _, i := range ifs {
					names = append(names, i.Name)
				}
				return names, cobra.ShellCompDirectiveNoFileComp
			})
			break
		}
	}
}

// runCompletion is `xdpscan completion bash|zsh|fish`.
func runCompletion(args []string) error {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Print("Usage: xdpscan completion bash|zsh|fish\n\nWrites the shell's completion script to stdout. make install puts them in place;\n" +
			"by hand: xdpscan completion bash > /etc/bash_completion.d/xdpscan\n")
		return nil
	}
	if len(args) != 1 {
		return usageError("completion: say bash, zsh or fish (see `xdpscan completion --help`)")
	}
	root := cobraTree()
	switch args[0] {
	case "bash":
		return root.GenBashCompletionV2(os.Stdout, true)
	case "zsh":
		return root.GenZshCompletion(os.Stdout)
	case "fish":
		return root.GenFishCompletion(os.Stdout, true)
	}
	return usageError("completion: %q: say bash, zsh or fish", args[0])
}

// runCobraComplete answers the completion scripts' requests.
func runCobraComplete(args []string) error {
	root := cobraTree()
	root.SetArgs(args)
	return root.Execute()
}

// runMan is `xdpscan man DIR` (for make install): one page per command.
func runMan(args []string) error {
	if len(args) != 1 || len(args[0]) > 0 && args[0][0] == '-' {
		return usageError("man: give the directory to write the pages to (xdpscan man DIR)")
	}
	if err := os.MkdirAll(args[0], 0o755); err != nil {
		return err
	}
	root := cobraTree()
	root.DisableAutoGenTag = true
	var preformat func(*cobra.Command)
	preformat = func(c *cobra.Command) {
		c.Long = manLong(c.Long)
		for _, sub := range c.Commands() {
			preformat(sub)
		}
	}
	preformat(root)
	return doc.GenManTree(root, &doc.GenManHeader{Title: "XDPSCAN", Section: "1", Source: "xdpscan " + versionString(),
		Manual: "xdpscan manual"}, args[0])
}

// manLong is a help text as go-md2man's markdown: indented lines (tables,
// examples) become preformatted blocks instead of being reflowed.
func manLong(s string) string {
	var b strings.Builder
	inBlock := false
	for _, line := range strings.Split(s, "\n") {
		indented := strings.HasPrefix(line, "  ") && strings.TrimSpace(line) != ""
		switch {
		case indented && !inBlock:
			b.WriteString("\n")
			inBlock = true
		case !indented && inBlock && strings.TrimSpace(line) != "":
			b.WriteString("\n")
			inBlock = false
		}
		if indented {
			b.WriteString("    ")
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
