package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/targets"
)

// scanView is what a scan command line decides, short of the routes: the
// fields two spellings of one command must agree on.
type scanView struct {
	Ports                                   []targets.Port
	Rate                                    float64
	Wait, ConnectTimeout                    time.Duration
	Iface, SourceIP, IncludeFile, Exclude   string
	ExcludeFile, Output, Format, AdapterMAC string
	Extras                                  []string // "-oG:file:grepable"
	Retries, Verbosity                      int
	Connect, Ping, Open, Reset              bool
	Positional                              []string
}

// parseScan runs scan's flag handling on args as runScanFlags does, up
// to the ports.
func parseScan(args []string) (scanView, error) {
	f, fs := newScanFlags()
	pos, err := parseFlags(fs, args)
	if err != nil {
		return scanView{}, err
	}
	if err := f.habits.check(f, fs); err != nil {
		return scanView{}, err
	}
	if err := f.habits.resolveOutputs(f, fs); err != nil {
		return scanView{}, err
	}
	ports, err := portsFromFlags(f)
	if err != nil {
		return scanView{}, err
	}
	v := scanView{Ports: ports, Rate: f.rate, Wait: f.wait, ConnectTimeout: f.connectTimeout, Iface: f.iface,
		SourceIP: f.sourceIP, IncludeFile: f.includeFile, Exclude: f.exclude, ExcludeFile: f.excludeFile,
		Output: f.output, Format: f.format, AdapterMAC: f.habits.adapterMAC, Retries: f.retries,
		Verbosity: f.habits.verbosity, Connect: f.connect, Ping: f.ping, Open: f.habits.open, Reset: f.reset,
		Positional: pos}
	for _, x := range f.habits.extras {
		v.Extras = append(v.Extras, "-"+x.flag+":"+x.path+":"+x.format)
	}
	return v, nil
}

func ports(t *testing.T, spec string) []targets.Port {
	t.Helper()
	p, err := targets.ParsePortSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestScanFlagSpellings: masscan's, nmap's, zmap's and Go's spellings of
// one scan give the same configuration as ours; each group's first
// command line is also checked against the fields it must set.
func TestScanFlagSpellings(t *testing.T) {
	base := []string{"198.18.0.0/24"}
	tests := []struct {
		name      string
		spellings [][]string
		check     func(t *testing.T, v scanView)
	}{
		{"one port", [][]string{{"-p80"}, {"-p", "80"}, {"-p=80"}, {"--ports", "80"}, {"--ports=80"}, {"-ports", "80"}, {"-sS", "-p", "80"}},
			func(t *testing.T, v scanView) {
				if !reflect.DeepEqual(v.Ports, ports(t, "80")) {
					t.Errorf("ports %v", v.Ports)
				}
			}},
		{"every port", [][]string{{"-p-"}, {"-p", "-"}, {"--ports=-"}, {"-p", "1-65535"}},
			func(t *testing.T, v scanView) {
				if len(v.Ports) != 65535 || v.Ports[0].Num != 1 || v.Ports[65534].Num != 65535 {
					t.Errorf("%d ports", len(v.Ports))
				}
			}},
		{"rate", [][]string{{"-p80", "--max-rate", "5000"}, {"-p80", "--rate", "5000"}, {"-p80", "--rate=5000"},
			{"-p80", "-rate", "5000"}, {"-p80", "--max-rate=5000"}, {"-p80", "--rate", "5e3"}},
			func(t *testing.T, v scanView) {
				if v.Rate != 5000 {
					t.Errorf("rate %v", v.Rate)
				}
			}},
		{"wait in seconds or as a duration", [][]string{{"-p80", "--wait", "3"}, {"-p80", "--wait", "3s"}, {"-p80", "--wait=3000ms"},
			{"-p80", "-wait", "3"}, {"-p80", "--wait", "0.05m"}},
			func(t *testing.T, v scanView) {
				if v.Wait != 3*time.Second {
					t.Errorf("wait %v", v.Wait)
				}
			}},
		{"fractional seconds", [][]string{{"-p80", "--wait", "0.5"}, {"-p80", "--wait", "500ms"}, {"-p80", "--wait", ".5"}},
			func(t *testing.T, v scanView) {
				if v.Wait != 500*time.Millisecond {
					t.Errorf("wait %v", v.Wait)
				}
			}},
		{"connect timeout", [][]string{{"-p80", "--connect-timeout", "2"}, {"-p80", "--connect-timeout=2s"}},
			func(t *testing.T, v scanView) {
				if v.ConnectTimeout != 2*time.Second {
					t.Errorf("connect timeout %v", v.ConnectTimeout)
				}
			}},
		{"interface", [][]string{{"-p80", "-e", "lo"}, {"-p80", "--adapter", "lo"}, {"-p80", "-i", "lo"}, {"-p80", "--interface=lo"},
			{"-p80", "-ilo"}, {"-p80", "-elo"}, {"-p80", "--adapter=lo"}},
			func(t *testing.T, v scanView) {
				if v.Iface != "lo" {
					t.Errorf("iface %q", v.Iface)
				}
			}},
		{"source address", [][]string{{"-p80", "--adapter-ip", "198.18.0.9"}, {"-p80", "--source-ip", "198.18.0.9"}, {"-p80", "--adapter-ip=198.18.0.9"}},
			func(t *testing.T, v scanView) {
				if v.SourceIP != "198.18.0.9" {
					t.Errorf("source %q", v.SourceIP)
				}
			}},
		{"exclude file", [][]string{{"-p80", "--excludefile", "ex.txt"}, {"-p80", "--exclude-file", "ex.txt"}, {"-p80", "--exclude-file=ex.txt"}},
			func(t *testing.T, v scanView) {
				if v.ExcludeFile != "ex.txt" {
					t.Errorf("exclude file %q", v.ExcludeFile)
				}
			}},
		{"include file", [][]string{{"-p80", "-iL", "in.txt"}, {"-p80", "--includefile", "in.txt"}, {"-p80", "--include-file=in.txt"}, {"-p80", "-iL=in.txt"}},
			func(t *testing.T, v scanView) {
				if v.IncludeFile != "in.txt" {
					t.Errorf("include file %q", v.IncludeFile)
				}
			}},
		{"retries", [][]string{{"-p80", "--max-retries", "2"}, {"-p80", "--retries", "2"}, {"-p80", "--retries=2"}},
			func(t *testing.T, v scanView) {
				if v.Retries != 2 {
					t.Errorf("retries %d", v.Retries)
				}
			}},
		{"UDP", [][]string{{"-sU", "-p", "53,161"}, {"-p", "U:53,U:161"}, {"-sU", "-p53,161"}, {"-p", "U:53,U:161", "-Pn", "-n"}},
			func(t *testing.T, v scanView) {
				if !reflect.DeepEqual(v.Ports, ports(t, "U:53,U:161")) {
					t.Errorf("ports %v", v.Ports)
				}
			}},
		{"SYN and UDP together", [][]string{{"-sS", "-sU", "-p", "53"}, {"-p", "T:53,U:53"}, {"-sU", "-sS", "-p53"}},
			func(t *testing.T, v scanView) {
				if !reflect.DeepEqual(v.Ports, ports(t, "T:53,U:53")) {
					t.Errorf("ports %v", v.Ports)
				}
			}},
		{"connect", [][]string{{"-sT", "-p80"}, {"--connect", "-p80"}, {"-p80", "-sT", "-Pn"}},
			func(t *testing.T, v scanView) {
				if !v.Connect {
					t.Error("not a connect scan")
				}
			}},
		{"nmap's defaults", [][]string{{"-p80"}, {"-sS", "-Pn", "-n", "-p80"}, {"-Pn", "-n", "-sS", "-p", "80"}, {"-n", "-Pn", "-p80"}},
			func(t *testing.T, v scanView) {
				if v.Connect || v.Ping || !reflect.DeepEqual(v.Ports, ports(t, "80")) {
					t.Errorf("%+v", v)
				}
			}},
		{"verbosity", [][]string{{"-p80", "-vv"}, {"-p80", "-v", "-v"}, {"-p80", "--verbose", "--verbose"}, {"-p80", "--verbose=2"},
			{"-p80", "-v", "--verbose"}, {"-vvp80"}},
			func(t *testing.T, v scanView) {
				if v.Verbosity != 2 {
					t.Errorf("verbosity %d", v.Verbosity)
				}
			}},
		{"list output", [][]string{{"-p80", "-oL", "r.txt"}, {"-p80", "-o", "r.txt", "--format", "list"}, {"-p80", "-oL=r.txt"}, {"-p80", "--oL", "r.txt"}},
			func(t *testing.T, v scanView) {
				if v.Output != "r.txt" || v.Format != "list" || v.Extras != nil {
					t.Errorf("output %q %q %v", v.Output, v.Format, v.Extras)
				}
			}},
		{"XML output", [][]string{{"-p80", "-oX", "r.xml"}, {"-p80", "-o", "r.xml", "--format=xml"}},
			func(t *testing.T, v scanView) {
				if v.Output != "r.xml" || v.Format != "xml" {
					t.Errorf("output %q %q", v.Output, v.Format)
				}
			}},
		{"grepable output", [][]string{{"-p80", "-oG", "r.gnmap"}, {"-p80", "-o", "r.gnmap", "--format", "grepable"}},
			func(t *testing.T, v scanView) {
				if v.Output != "r.gnmap" || v.Format != "grepable" {
					t.Errorf("output %q %q", v.Output, v.Format)
				}
			}},
		{"NDJSON output", [][]string{{"-p80", "-oD", "r.ndjson"}, {"-p80", "-o", "r.ndjson", "--format", "ndjson"}},
			func(t *testing.T, v scanView) {
				if v.Output != "r.ndjson" || v.Format != "ndjson" {
					t.Errorf("output %q %q", v.Output, v.Format)
				}
			}},
		{"XML to stdout", [][]string{{"-p80", "-oX", "-"}, {"-p80", "--format", "xml"}},
			func(t *testing.T, v scanView) {
				if v.Output != "" || v.Format != "xml" {
					t.Errorf("output %q %q", v.Output, v.Format)
				}
			}},
		{"several outputs", [][]string{{"-p80", "-oX", "a.xml", "-oG", "a.gnmap", "-oL", "a.txt"}, {"-p80", "-oL", "a.txt", "-oX", "a.xml", "-oG", "a.gnmap"}},
			func(t *testing.T, v scanView) {
				// The flags' order, not the command line's: the first is -o.
				if v.Output != "a.txt" || v.Format != "list" || !slices.Equal(v.Extras, []string{"-oX:a.xml:xml", "-oG:a.gnmap:grepable"}) {
					t.Errorf("output %q %q, extras %v", v.Output, v.Format, v.Extras)
				}
			}},
		{"-o with other outputs", [][]string{{"-p80", "-o", "a.csv", "--format", "csv", "-oX", "a.xml"}},
			func(t *testing.T, v scanView) {
				if v.Output != "a.csv" || v.Format != "csv" || !slices.Equal(v.Extras, []string{"-oX:a.xml:xml"}) {
					t.Errorf("output %q %q, extras %v", v.Output, v.Format, v.Extras)
				}
			}},
		{"open only", [][]string{{"-p80", "--open"}, {"--open", "-p", "80"}, {"-p80", "--open=true"}},
			func(t *testing.T, v scanView) {
				if !v.Open {
					t.Error("--open not set")
				}
			}},
		{"source MAC", [][]string{{"-p80", "--adapter-mac", "02:00:00:00:00:01"}, {"-p80", "--adapter-mac=02:00:00:00:00:01"}},
			func(t *testing.T, v scanView) {
				if v.AdapterMAC != "02:00:00:00:00:01" {
					t.Errorf("adapter MAC %q", v.AdapterMAC)
				}
			}},
		{"negative value", [][]string{{"-p80", "--tx-relay-cpu", "-1"}, {"-p80", "--tx-relay-cpu=-1"}, {"-p80"}},
			func(t *testing.T, v scanView) {}},
		{"booleans", [][]string{{"-p80", "--reset=false"}, {"-p80", "-reset=false"}},
			func(t *testing.T, v scanView) {
				if v.Reset {
					t.Error("--reset=false ignored")
				}
			}},
		{"targets between flags", [][]string{{"-p80", "198.18.1.0/24"}, {"198.18.1.0/24", "-p80"}, {"-p", "80", "--", "198.18.1.0/24"}},
			func(t *testing.T, v scanView) {
				if !slices.Equal(v.Positional, []string{"198.18.0.0/24", "198.18.1.0/24"}) &&
					!slices.Equal(v.Positional, []string{"198.18.1.0/24", "198.18.0.0/24"}) {
					t.Errorf("positional %v", v.Positional)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var first scanView
			for i, args := range tc.spellings {
				v, err := parseScan(append(append([]string{}, base...), args...))
				if err != nil {
					t.Fatalf("%q: %v", args, err)
				}
				if i == 0 {
					first = v
					tc.check(t, v)
					continue
				}
				if tc.name == "targets between flags" {
					tc.check(t, v)
					continue
				}
				if !reflect.DeepEqual(v, first) {
					t.Errorf("%q gives\n%+v\n%q gives\n%+v", args, v, tc.spellings[0], first)
				}
			}
		})
	}
}

// TestTopPorts: --top-ports N and -F read nmap's table: the most frequent
// TCP ports (UDP with -sU), and equal to the same list given with -p.
func TestTopPorts(t *testing.T) {
	top10, err := topPorts(nmapServicesPath, "tcp", 10)
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, p := range top10 {
		list = append(list, fmt.Sprint(p))
	}
	// nmap 7.93's ten most frequent TCP ports.
	if got := strings.Join(list, ","); got != "21,22,23,25,80,110,139,443,445,3389" {
		t.Errorf("top 10 TCP ports %s", got)
	}
	for _, tc := range []struct {
		name string
		a, b []string
	}{
		{"top 10", []string{"--top-ports", "10"}, []string{"-p", strings.Join(list, ",")}},
		{"-F is the top 100", []string{"-F"}, []string{"--top-ports=100"}},
		{"UDP", []string{"--top-ports", "10", "-sU"}, []string{"-sU", "-p", "53,67,123,135,137,138,161,445,631,1434"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseScan(append([]string{"198.18.0.1"}, tc.a...))
			if err != nil {
				t.Fatal(err)
			}
			b, err := parseScan(append([]string{"198.18.0.1"}, tc.b...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Ports, b.Ports) {
				t.Errorf("%q: %v\n%q: %v", tc.a, a.Ports, tc.b, b.Ports)
			}
		})
	}
	t.Run("table missing", func(t *testing.T) {
		old := nmapServicesPath
		nmapServicesPath = t.TempDir() + "/nmap-services"
		defer func() { nmapServicesPath = old }()
		_, err := parseScan([]string{"198.18.0.1", "--top-ports", "10"})
		want := "--top-ports 10: nmap's frequency table " + nmapServicesPath + " is missing: install nmap (apt-get install nmap), or give -p PORTS"
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant %s", err, want)
		}
	})
}

// TestOutputFlagFormats: each -oX style flag writes its format; a format
// the output package does not have yet is refused, naming it.
func TestOutputFlagFormats(t *testing.T) {
	want := map[string]string{"oL": "list", "oX": "xml", "oG": "grepable", "oJ": "json", "oD": "ndjson", "oN": "normal"}
	for fl, format := range want {
		t.Run(fl, func(t *testing.T) {
			v, err := parseScan([]string{"198.18.0.1", "-p80", "-" + fl, "out"})
			if slices.Contains(output.Formats, format) {
				if err != nil || v.Format != format || v.Output != "out" {
					t.Errorf("-%s: %q %q %v, want format %s", fl, v.Output, v.Format, err, format)
				}
				return
			}
			msg := fmt.Sprintf("-%s: the %s format is not in this build yet (formats: %s)", fl, format, strings.Join(output.Formats, ", "))
			if err == nil || err.Error() != msg {
				t.Errorf("-%s: error %v, want %s", fl, err, msg)
			}
		})
	}
}

// TestUsageErrors: each usage error is one line, exactly this text, exit
// status 2, printed by main as "xdpscan: TEXT".
func TestUsageErrors(t *testing.T) {
	see := " (see `xdpscan scan --help`)"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"near miss", []string{"scan", "--opne"}, "scan: unknown flag --opne: did you mean --open?" + see},
		{"swapped letters", []string{"scan", "--rtae", "5"}, "scan: unknown flag --rtae: did you mean --rate?" + see},
		{"prefix", []string{"scan", "--exclu", "x"}, "scan: unknown flag --exclu: did you mean --exclude?" + see},
		{"far off", []string{"scan", "--frobnicate"}, "scan: unknown flag --frobnicate" + see},
		{"unknown letter", []string{"scan", "-x"}, "scan: unknown flag -x" + see},
		{"unknown letter in a cluster", []string{"scan", "-vx"}, "scan: unknown flag -vx" + see},
		{"masscan's banners", []string{"scan", "--banners"},
			"scan: xdpscan has no --banners (masscan's): it grabs no banners (it completes no connection)" + see},
		{"nmap's version scan", []string{"scan", "-sV"}, "scan: xdpscan has no -sV (nmap's): it does not detect service versions (it completes no connection)" + see},
		{"nmap's OS detection", []string{"scan", "-O"}, "scan: xdpscan has no -O (nmap's): it does not detect operating systems" + see},
		{"nmap's scripts", []string{"scan", "--script", "vuln"}, "scan: xdpscan has no --script (nmap's): it runs no scripts" + see},
		{"nmap's timing", []string{"scan", "-T4"},
			"scan: xdpscan has no -T4 (nmap's): it has no timing templates: set --rate N (probes per second) and --wait SECONDS" + see},
		{"nmap's ping scan", []string{"scan", "-sn"}, "scan: xdpscan has no -sn (nmap's): use --ping alone (ICMP echo host discovery)" + see},
		{"nmap's SYN ping", []string{"scan", "-PS80"}, "scan: xdpscan has no -PS80 (nmap's): it discovers hosts by ICMP echo only: --ping or --ping-first" + see},
		{"nmap's min rate", []string{"scan", "--min-rate=100"}, "scan: xdpscan has no --min-rate: it sends at one exact rate: use --rate N (probes per second)" + see},
		{"zmap's bandwidth", []string{"scan", "-B", "10M"}, "scan: xdpscan has no -B (zmap's): use --rate N (probes per second)" + see},
		{"bad number", []string{"scan", "--rate", "fast"}, `scan: --rate "fast": want a number` + see},
		{"bad duration", []string{"scan", "--wait", "soon"}, `scan: --wait "soon": want seconds (2, 0.5) or a duration (500ms, 2m)` + see},
		{"infinite seconds", []string{"scan", "--wait", "Inf"}, `scan: --wait "Inf": want seconds (2, 0.5) or a duration (500ms, 2m)` + see},
		{"bad count", []string{"scan", "--retries", "x"}, `scan: --retries "x": want a whole number` + see},
		{"bad boolean", []string{"scan", "--open=maybe"}, `scan: --open "maybe": want true or false` + see},
		{"value missing", []string{"scan", "--rate"}, "scan: --rate needs a value" + see},
		{"value missing short", []string{"scan", "-p"}, "scan: -p needs a value" + see},
		{"SYN and connect", []string{"scan", "198.18.0.1", "-p80", "-sS", "-sT"},
			"-sS (a SYN scan) and -sT/--connect (a connect scan) are two scan types: pick one"},
		{"top-ports and -p", []string{"scan", "198.18.0.1", "-p80", "--top-ports", "10"}, "--top-ports 10 and -p 80 both choose the ports: give one"},
		{"-F and top-ports", []string{"scan", "198.18.0.1", "-F", "--top-ports", "10"}, "-F is --top-ports 100: drop one of -F and --top-ports 10"},
		{"top-ports too many", []string{"scan", "198.18.0.1", "--top-ports", "70000"}, "--top-ports 70000: give 1 to 65535"},
		{"two outputs to stdout", []string{"scan", "198.18.0.1", "-p80", "-oX", "-", "-oG", "-"}, "-oG -: only one output can go to stdout"},
		{"output flag without a file", []string{"scan", "198.18.0.1", "-p80", "-oX="}, `-oX: give a file name ("-" for stdout)`},
		{"format with -oX", []string{"scan", "198.18.0.1", "-p80", "-oX", "a.xml", "--format", "csv"},
			"--format goes with -o FILE; -oX names its own format (xml)"},
		{"append with several", []string{"scan", "198.18.0.1", "-p80", "-oL", "a", "-oG", "b", "--append-output"},
			"--append-output appends to one output file; with several (-oG ...) name new files"},
		{"bad adapter MAC", []string{"scan", "198.18.0.1", "-p80", "--adapter-mac", "zz"}, `--adapter-mac "zz": not a MAC address`},
		{"multicast adapter MAC", []string{"scan", "198.18.0.1", "-p80", "--adapter-mac", "01:00:5e:00:00:01"},
			"--adapter-mac 01:00:5e:00:00:01: a source MAC must be a unicast address"},
		{"capture duration", []string{"capture", "--duration", "x"},
			`capture: --duration "x": want seconds (2, 0.5) or a duration (500ms, 2m) (see ` + "`xdpscan capture --help`)"},
		{"capture unknown", []string{"capture", "--snaplenn", "5"}, "capture: unknown flag --snaplenn: did you mean --snaplen? (see `xdpscan capture --help`)"},
		{"bench sub flag", []string{"bench", "scan", "--runz", "2"}, "bench scan: unknown flag --runz: did you mean --runs? (see `xdpscan bench scan --help`)"},
		{"testbed flag", []string{"testbed", "up", "--nmae", "x"}, "testbed up: unknown flag --nmae: did you mean --name? (see `xdpscan testbed up --help`)"},
		{"no command", nil, "no command given: say scan, testbed, capture, monitor, merge, bench, version or completion (see `xdpscan --help`)"},
		{"command typo", []string{"scna"}, "unknown command \"scna\": did you mean scan? (see `xdpscan --help`)"},
		{"flag before the command", []string{"-p80"},
			"-p80: flags come after the command: xdpscan COMMAND -p80 ... (commands: scan, testbed, capture, monitor, merge, bench, version or completion; see `xdpscan --help`)"},
		{"bench alone", []string{"bench"}, "bench: say scan, capture, flood, xdp-pass or xdp-toggle (see `xdpscan bench --help`)"},
		{"testbed alone", []string{"testbed"}, "testbed: say up, down or status (see `xdpscan testbed --help`)"},
		{"completion shell", []string{"completion", "tcsh"}, `completion: "tcsh": say bash, zsh or fish`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			out := captureStdout(t, func() { err = run(tc.args) })
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("error %v, want a usage error (status 2)", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n%s\nwant\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("more than one line: %q", err)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}

// captureStdout runs fn with os.Stdout going to a pipe, and returns what
// it wrote.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		b.ReadFrom(r)
		done <- b.String()
	}()
	defer func() { os.Stdout = old }()
	fn()
	w.Close()
	os.Stdout = old
	return <-done
}

// TestDurationFlagsTakeSeconds: every duration flag of every command takes
// a plain number as seconds, whoever registered it.
func TestDurationFlagsTakeSeconds(t *testing.T) {
	n := 0
	for _, tc := range commandTree {
		fs := commandFlagSet(tc.run, tc.args...)
		if fs == nil {
			t.Fatalf("%v: no flag set", tc.path)
		}
		fs.VisitAll(func(fl *flagType) {
			if fl.Value.Type() != "duration" {
				return
			}
			n++
			if err := fs.Set(fl.Name, "1.5"); err != nil {
				t.Errorf("%v --%s 1.5: %v", tc.path, fl.Name, err)
			} else if got := fl.Value.String(); got != "1.5s" {
				t.Errorf("%v --%s 1.5 is %s", tc.path, fl.Name, got)
			}
			if err := fs.Set(fl.Name, "250ms"); err != nil || fl.Value.String() != "250ms" {
				t.Errorf("%v --%s 250ms: %v %s", tc.path, fl.Name, err, fl.Value)
			}
		})
	}
	if n < 8 {
		t.Errorf("only %d duration flags found", n)
	}
}

// TestEditDistance: swaps count one (--opne), as in git's "did you mean".
func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"open", "open", 0}, {"opne", "open", 1}, {"rat", "rate", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

type flagType = flag.Flag

// TestManLong: indented lines of a help text become markdown code blocks
// (blank line before, four spaces), so the man page keeps tables and
// examples as written; prose is left to reflow.
func TestManLong(t *testing.T) {
	in := "Prose line.\n  open   SYN-ACK\n  closed RST\nMore prose.\n"
	want := "Prose line.\n\n      open   SYN-ACK\n      closed RST\n\nMore prose.\n\n"
	if got := manLong(in); got != want {
		t.Errorf("manLong:\n%q\nwant\n%q", got, want)
	}
}

// TestHelpGroupsName: every name in scan's group and value-name tables is
// a flag scan has (setGroup skips an unknown name rather than fail a run).
func TestHelpGroupsName(t *testing.T) {
	newScanFlags()
	missingHelpNames.Range(func(k, _ any) bool {
		t.Errorf("the help tables name %q, a flag that does not exist", k)
		return true
	})
}
