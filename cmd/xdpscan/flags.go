package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/term"
)

// newFlags makes a flag set whose errors come back to run() instead of
// exiting, and whose --help prints the command's own text.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(os.Stdout, "Usage: %s\n\nFlags:\n", synopsis)
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args with flags and positional arguments interleaved
// (`xdpscan scan 198.18.0.0/16 -p 80` as masscan and nmap accept).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelpShown // Parse has printed fs.Usage
			}
			return nil, usageError("%s: %v (see `xdpscan %s --help`)", fs.Name(), err, strings.Fields(fs.Name())[0])
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func netInterface(name string) (*net.Interface, error) { return net.InterfaceByName(name) }

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
