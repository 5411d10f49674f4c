package main

// The outputs a scan writes beside -o/--format: any number of FORMAT:FILE,
// each its own file in its own format, all fed by the same scan (nmap's
// -oX a -oG b -oN c, masscan's -oL/-oJ/-oD). nmap's and masscan's
// spellings map onto outputOpts.add.

import (
	"flag"
	"os"
	"runtime/debug"
	"strings"

	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/targets"
)

type outputOpts struct {
	dests []output.Dest
}

// add is one more output: nmap's -oX FILE is add("xml", FILE), -oG
// "grepable", -oN "normal"; masscan's -oL "list", -oJ "json", -oD "ndjson".
func (o *outputOpts) add(format, path string) error {
	d, err := output.ParseDest(format + ":" + path)
	if err != nil {
		return err
	}
	o.dests = append(o.dests, d)
	return nil
}

// String and Set make outputOpts a repeatable flag.Value.
func (o *outputOpts) String() string {
	var s []string
	for _, d := range o.dests {
		s = append(s, d.Format+":"+d.Path)
	}
	return strings.Join(s, ",")
}

func (o *outputOpts) Set(v string) error {
	d, err := output.ParseDest(v)
	if err != nil {
		return err
	}
	o.dests = append(o.dests, d)
	return nil
}

func addOutputFlags(fs *flag.FlagSet, o *outputOpts) {
	fs.Var(o, "out", "also write the results as FORMAT to FILE (repeatable: one scan, several files):\n"+
		"xml (nmap -oX), grepable (-oG), normal (-oN), list (masscan -oL), json (-oJ), ndjson (-oD), csv, human.\n"+
		"nmap's three are written host by host when the scan ends (Ctrl-C ends it too); a SIGKILL leaves\n"+
		"them without hosts, so keep a streaming one (list, ndjson, json) beside them")
}

// outputMeta is what nmap's formats say about the scan.
func outputMeta(cfg scan.Config, connect bool) output.Meta {
	m := output.Meta{Args: os.Args, Version: buildVersion(), Connect: connect, Hosts: cfg.Targets.Len()}
	for _, p := range cfg.Ports {
		switch p.Proto {
		case targets.ProtoTCP:
			m.TCP = append(m.TCP, p.Num)
		case targets.ProtoUDP:
			m.UDP = append(m.UDP, p.Num)
		}
	}
	return m
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// checkOutputDests refuses an output named twice.
func checkOutputDests(o *outputOpts) error {
	for i, d := range o.dests {
		if d.Path == "-" {
			return usageError("--out %s:-: name a file (the results go to stdout unless -o is given)", d.Format)
		}
		for _, e := range o.dests[:i] {
			if e.Path == d.Path {
				return usageError("--out %s:%s and %s:%s name the same file: one would overwrite the other", e.Format, e.Path, d.Format, d.Path)
			}
		}
	}
	return nil
}
