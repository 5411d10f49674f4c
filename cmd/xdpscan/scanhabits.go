package main

// The spellings masscan, nmap and zmap users bring to `xdpscan scan`
// (issue 20): aliases of our own flags, the defaults nmap makes people
// type (-sS, -Pn, -n), nmap's and masscan's output flags (several at
// once), --open, --top-ports and -v.

import (
	"fmt"
	"io"
	"net"
	"strings"

	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/scan"
)

// scanHabits holds the flags of this file.
type scanHabits struct {
	outputs  []*formatOutput
	open     bool
	topPorts int
	fast     bool
	defaults bool // -sS, -Pn, -n
	// both is -sS with -sU: ports without T:/U: are scanned over both
	// (nmap -sS -sU -p 53 probes tcp/53 and udp/53).
	both       bool
	verbosity  int
	adapterMAC string
	srcMAC     net.HardwareAddr
	// extras are the output files beyond the first (set by resolveOutputs).
	extras []*formatOutput
}

// formatOutput is one -oX FILE style flag: its file and format.
type formatOutput struct {
	flag, format, what string
	path               string
}

// outputFlags are masscan's and nmap's output flags and the output
// format each writes. -oJ's JSON array and -oN's nmap normal text are
// output's "json" and "normal" (issue 20 part 3).
var outputFlags = []formatOutput{
	{flag: "oL", format: "list", what: "masscan's list (open tcp 80 ADDR TIME)"},
	{flag: "oX", format: "xml", what: "nmap XML"},
	{flag: "oG", format: "grepable", what: "nmap's grepable format"},
	{flag: "oJ", format: "json", what: "a JSON array (masscan's -oJ)"},
	{flag: "oD", format: "ndjson", what: "one JSON object a line (masscan's -oD)"},
	{flag: "oN", format: "normal", what: "nmap's normal text"},
}

// addScanHabitFlags registers the flags of this file on fs, aliases on
// f's own variables.
func addScanHabitFlags(fs *flag.FlagSet, f *scanFlags) {
	h := &f.habits
	for _, o := range outputFlags {
		o := o
		h.outputs = append(h.outputs, &o)
		fs.StringVar(&h.outputs[len(h.outputs)-1].path, o.flag, "", "write "+o.what+" to FILE (\"-\": stdout); several at once")
	}
	fs.BoolVar(&h.open, "open", false, "list only open ports (and hosts up, with --ping); closed and filtered are still counted in --stats-json")
	fs.IntVar(&h.topPorts, "top-ports", 0, "scan the N most common ports by nmap's frequency table (/usr/share/nmap/nmap-services,\n"+
		"from nmap): TCP, or UDP with -sU")
	fs.BoolVar(&h.fast, "F", false, "nmap's fast scan: --top-ports 100")
	fs.BoolVar(&h.defaults, "sS", false, "accepted as the defaults they are: a SYN scan (-sS), no ping first (-Pn), no DNS (-n)")
	fs.BoolVar(&h.defaults, "Pn", false, "same as -sS")
	fs.BoolVar(&h.defaults, "n", false, "same as -sS")
	fs.CountVar(&h.verbosity, "v", "-v: the verifier's whole log when it refuses a program (also XDPSCAN_VERIFIER_LOG=1);\n"+
		"-vv: also the scan's plan (probes, source, next hop) before it starts")
	fs.CountVar(&h.verbosity, "verbose", "same as -v")
	fs.StringVar(&h.adapterMAC, "adapter-mac", "", "source MAC of the probes (masscan's; default: the interface's). Replies come back to it:\n"+
		"the interface must receive them")
	fs.StringVar(&f.iface, "e", "", "same as -i (nmap's)")
	fs.StringVar(&f.iface, "adapter", "", "same as -i (masscan's)")
	fs.StringVar(&f.sourceIP, "adapter-ip", "", "same as --source-ip (masscan's)")
	fs.Float64Var(&f.rate, "max-rate", 10000, "same as --rate (masscan's and nmap's)")
	fs.StringVar(&f.excludeFile, "excludefile", "", "same as --exclude-file (masscan's and nmap's)")
	fs.StringVar(&f.includeFile, "includefile", "", "same as -iL (masscan's)")
	fs.IntVar(&f.retries, "max-retries", 0, "same as --retries (nmap's)")
}

// scanHelpGroups puts scan's flags in the help's groups.
func scanHelpGroups(fs *flag.FlagSet) {
	setGroup(fs, "Targets", "iL", "include-file", "includefile", "exclude", "exclude-file", "excludefile", "allow")
	setGroup(fs, "Ports and probes", "p", "ports", "top-ports", "F", "sU", "ping", "ping-first", "connect", "sT", "sS", "Pn", "n", "confirm")
	setGroup(fs, "Rate and timing", "rate", "max-rate", "wait", "retries", "max-retries", "connect-timeout", "workers",
		"seed", "shards", "shard")
	setGroup(fs, "Output", "o", "format", "oL", "oX", "oG", "oJ", "oD", "oN", "open", "append-output", "stats-json", "status", "v")
	setGroup(fs, "Paths", "i", "interface", "e", "adapter", "source-ip", "adapter-ip", "adapter-mac", "source-port",
		"router-mac", "rx", "tx", "tx-relay-cpu", "mode")
	setMetavar(fs, "CIDR", "allow", "exclude")
	setMetavar(fs, "FILE", "iL", "include-file", "includefile", "exclude-file", "excludefile", "o", "stats-json", "resume",
		"oL", "oX", "oG", "oJ", "oD", "oN")
	setMetavar(fs, "PORTS", "p", "ports")
	setMetavar(fs, "PPS", "rate", "max-rate")
	setMetavar(fs, "IFACE", "i", "interface", "e", "adapter")
	setMetavar(fs, "ADDR", "source-ip", "adapter-ip")
	setMetavar(fs, "MAC", "router-mac", "adapter-mac")
	setMetavar(fs, "LO-HI", "source-port")
	setMetavar(fs, "CPU", "tx-relay-cpu")
	setMetavar(fs, "USER", "Z", "user")
}

// resolveOutputs makes the first output flag the scan's -o (with its
// resume and append machinery) when -o is not given, and the rest extra
// files written beside it.
func (h *scanHabits) resolveOutputs(f *scanFlags, fs *flag.FlagSet) error {
	var given []*formatOutput
	for _, o := range h.outputs {
		if fs.Changed(o.flag) {
			if o.path == "" {
				return usageError("-%s: give a file name (\"-\" for stdout)", o.flag)
			}
			if !contains(output.Formats, o.format) {
				return usageError("-%s: the %s format is not in this build yet (formats: %s)", o.flag, o.format,
					strings.Join(output.Formats, ", "))
			}
			given = append(given, o)
		}
	}
	h.extras = nil
	if len(given) == 0 {
		return nil
	}
	if fs.Changed("format") && !fs.Changed("o") {
		return usageError("--format goes with -o FILE; -%s names its own format (%s)", given[0].flag, given[0].format)
	}
	if !fs.Changed("o") {
		first := given[0]
		given = given[1:]
		f.output, f.format = first.path, first.format
		if first.path == "-" {
			f.output = ""
		}
	}
	stdout := f.output == ""
	for _, o := range given {
		if o.path == "-" {
			if stdout {
				return usageError("-%s -: only one output can go to stdout", o.flag)
			}
			return usageError("-%s -: name a file; stdout can take the first output only", o.flag)
		}
	}
	if len(given) > 0 && f.appendOutput {
		return usageError("--append-output appends to one output file; with several (-%s ...) name new files", given[0].flag)
	}
	h.extras = given
	return nil
}

// check refuses the flags of this file that cannot go together.
func (h *scanHabits) check(f *scanFlags, fs *flag.FlagSet) error {
	if fs.Changed("sS") && f.connect {
		return usageError("-sS (a SYN scan) and -sT/--connect (a connect scan) are two scan types: pick one")
	}
	if h.adapterMAC != "" {
		mac, err := net.ParseMAC(h.adapterMAC)
		if err != nil || len(mac) != 6 {
			return usageError("--adapter-mac %q: not a MAC address", h.adapterMAC)
		}
		if mac[0]&1 != 0 || mac.String() == "00:00:00:00:00:00" {
			return usageError("--adapter-mac %s: a source MAC must be a unicast address", h.adapterMAC)
		}
		h.srcMAC = mac
	}
	h.both = fs.Changed("sS") && f.udp
	if h.fast {
		if fs.Changed("top-ports") && h.topPorts != 100 {
			return usageError("-F is --top-ports 100: drop one of -F and --top-ports %d", h.topPorts)
		}
		h.topPorts = 100
	}
	if h.topPorts < 0 || h.topPorts > 65535 {
		return usageError("--top-ports %d: give 1 to 65535", h.topPorts)
	}
	if h.topPorts > 0 && f.ports != "" {
		return usageError("--top-ports %d and -p %s both choose the ports: give one", h.topPorts, f.ports)
	}
	return nil
}

// keep is --open: the results listed.
func (h *scanHabits) keep(r scan.Result) bool {
	return !h.open || r.State == scan.StateOpen || r.State == scan.StateUp
}

// topPortSpec is --top-ports as a -p list.
func (h *scanHabits) topPortSpec(udp bool) (string, error) {
	proto := "tcp"
	if udp {
		proto = "udp"
	}
	ports, err := topPorts(nmapServicesPath, proto, h.topPorts)
	if err != nil {
		return "", usageError("--top-ports %d: %v", h.topPorts, err)
	}
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", p)
	}
	return b.String(), nil
}

// allPorts is nmap's -p-: every port (1-65535).
func allPorts(spec string) string {
	if strings.TrimSpace(spec) == "-" {
		return "1-65535"
	}
	return spec
}

// printPlan is -vv: what the scan will send, and from where.
func printPlan(w io.Writer, cfg scan.Config) {
	fmt.Fprintf(w, "xdpscan: plan: %d probes at %g/s, source ports %d-%d, %d pass(es), shard %d/%d, listening %s after the last\n",
		cfg.TotalProbes(), cfg.Rate, cfg.SportLo, cfg.SportHi, cfg.Retries+1, cfg.Shard, cfg.Shards, cfg.Wait)
	for _, p := range []route.Path{cfg.Path, cfg.Path6} {
		if p.Src.IsValid() {
			fmt.Fprintf(w, "xdpscan: plan: from %s %s on %s, next hop %s %s\n", p.Src, p.SrcMAC, p.Iface, p.NextHop, p.RouterMAC)
		}
	}
}

// setAdapterMAC is --adapter-mac: the probes' source MAC.
func (h *scanHabits) setAdapterMAC(cfg *scan.Config) error {
	if h.srcMAC == nil {
		return nil
	}
	for _, p := range []*route.Path{&cfg.Path, &cfg.Path6} {
		if p.Src.IsValid() {
			p.SrcMAC = h.srcMAC
		}
	}
	return nil
}

// extraOutput is one output file beyond the scan's first: created when
// the scan starts, as -o is, never appended to or read back (a scan with
// several outputs keeps no resume checkpoints).
type extraOutput struct {
	formatOutput
	stream  *outfile.Stream
	results *output.Writer
}

func (x *extraOutput) open(meta output.Meta, part *scan.Part) error {
	s, err := outfile.OpenStream(x.path, false)
	if err != nil {
		return fmt.Errorf("-%s: %w", x.flag, err)
	}
	w, err := output.New(s, x.format, output.Options{Meta: meta, TempDir: outputTempDir(x.path)})
	if err == nil && part != nil { // a shard: each file says which part it holds
		err = w.WritePart(*part)
	}
	if err != nil {
		s.Close(false)
		return fmt.Errorf("-%s: %w", x.flag, err)
	}
	x.stream, x.results = s, w
	return nil
}

// close writes the format's trailer (when the scan ran) and closes the
// file; a file nothing was written to is left as it was when ok is false.
func (x *extraOutput) close(ok bool) error {
	if x.stream == nil {
		return nil
	}
	var err error
	if ok {
		err = x.results.Close()
	}
	if cerr := x.stream.Close(ok); err == nil {
		err = cerr
	}
	x.stream = nil
	return err
}
