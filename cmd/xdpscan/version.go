package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/xdpscan/xdpscan/internal/kfloor"
	"github.com/xdpscan/xdpscan/internal/privs"
	"github.com/xdpscan/xdpscan/loader"
)

func runVersion(args []string) error {
	fs := newFlags("version", "xdpscan version [--verbose]\n\n"+
		"Prints the version, the kernel against each kernel floor xdpscan has (the first Linux version\n"+
		"with each feature it uses), and whether each subcommand can run here, by trying:\n"+
		"it loads each XDP program (and detaches nothing: it attaches nothing) and opens the sockets.")
	verbose := fs.Bool("verbose", false, "show the verifier's whole log when it refuses a program")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *verbose {
		loader.VerifierLogFull = true
	}
	for _, l := range versionLines() {
		fmt.Println(l)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		fmt.Println("btf     no (not required to run, but a sign of an old or stripped kernel)")
	} else {
		fmt.Println("btf     yes")
	}
	cur, err := privs.Current()
	if err != nil {
		return err
	}
	fmt.Printf("caps    %s (uid %d)\n", (cur.Eff & (binaryCaps | privs.Of(privs.CapSysAdmin, privs.CapPerfmon))), cur.UID[1])
	running, verr := kfloor.Running()
	for _, line := range floorLines(running, verr) {
		fmt.Println(line)
	}

	checks := []struct {
		p    pathNeeds
		load func() error
	}{
		{scanNeeds("xdp", "socket", false), loadScanProgram},
		{scanNeeds("xdp", "socket", true), nil},
		{captureNeeds("xdp"), loadCaptureProgram},
		{monitorNeeds, loadScanProgram},
	}
	short := false
	for _, c := range checks {
		err := canRun(c.p, c.load)
		if err == nil {
			what := "yes"
			if c.p.caps() == 0 {
				what += " (needs no capability)"
			}
			fmt.Printf("%-15s %s\n", c.p.name, what)
			continue
		}
		msg := "no: " + err.Error()
		if m, ok := err.(*errMissing); ok {
			msg = "no: needs " + m.missing.String() + " (missing)"
			short = true
		}
		fmt.Printf("%-15s %s\n", c.p.name, strings.ReplaceAll(msg, "\n", "\n                "))
	}
	if short {
		fmt.Println("to run them all:", setcapHint())
	}
	return nil
}

// floorLines are the running kernel against each floor of the table
// (internal/kfloor): whether it has the feature, and what lacks it when it
// does not. A kernel with the feature backported still runs it: the "can
// run" lines below them, which load the real programs, are the verdict.
func floorLines(running kfloor.Version, err error) []string {
	if err != nil {
		return []string{fmt.Sprintf("floors  unknown: %v", err)}
	}
	lines := make([]string, 0, len(kfloor.All))
	for _, f := range kfloor.All {
		have := "yes"
		if running.Less(f.Since) {
			have = fmt.Sprintf("no (this is %s)", running)
		}
		lines = append(lines, fmt.Sprintf("floor   %-5s %s  %s (%s): %s", f.Since, have, f.Name, f.Needs, f.UsedBy))
	}
	return lines
}
