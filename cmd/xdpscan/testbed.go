package main

import (
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"net/netip"
	"os"
	"strings"

	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/testbed"
)

const testbedUsage = `Usage: xdpscan testbed <up|down|status> [flags]

A private test network: namespace xdpscan-NAME-scan holds interface xs-scan
(198.19.0.1), namespace xdpscan-NAME-tgt holds xs-tgt (198.19.0.2) and owns
the whole target range by AnyIP. Nothing is routed anywhere else.

  up      build it and start the target (a background 'testbed serve' process)
  down    stop the target and remove the namespaces (--all: every xdpscan
          testbed; a --name that is not up is an error)
  status  show the configuration, the ground truth and the kernel's counters

Ground truth, for every address A in --range and port P:
  filtered    if the last octet of A >= --filtered-from (nftables drops it)
  prohibited  if it is >= --prohibited-from (ICMP admin prohibited; off by
              default)
  open        if P is one of --open-ports (TCP) or --udp-open-ports (UDP: a DNS
              server on 53, NTP on 123, an echo service on any other)
  closed      otherwise (the target answers RST, or ICMP port unreachable)
  up          every answering address answers ICMP echo
The target's ICMP rate limits are lifted unless --icmp-limit. With --ipv6
the target also owns 2001:2::/112 (RFC 5180 benchmarking space; scanner
2001:2:0:ffff::1, found by neighbour discovery) under the same rules, by
the last byte of the address; without it IPv6 is off in both namespaces.

Run a command inside the scanner namespace with:
  ip netns exec xdpscan-NAME-scan COMMAND

Flags (up):
`

func testbedFlags(sub string) (*testbedFlagValues, *flagSetWithUsage) {
	v := &testbedFlagValues{}
	fs := newFlags("testbed "+sub, "xdpscan testbed "+sub+" [flags]")
	fs.StringVar(&v.name, "name", "default", "testbed name: lower-case letters, digits and '-', at most 32 (namespaces xdpscan-NAME-scan and xdpscan-NAME-tgt)")
	if sub == "up" {
		fs.StringVar(&v.rangeStr, "range", "198.18.0.0/16", "target range (inside 198.18.0.0/15)")
		fs.StringVar(&v.ports, "open-ports", "22,80,443,8080", "ports open on every unfiltered address (at most 16)")
		fs.UintVar(&v.filteredFrom, "filtered-from", 240, "addresses whose last octet is >= this never answer")
		fs.StringVar(&v.target, "target", "kernel", "who answers: kernel (the TCP stack) or xdp (the XDP responder, for rates past the stack)")
		fs.BoolVar(&v.rps, "rps", false, "spread receive softirqs over all CPUs (RPS) on both veth ends")
		fs.BoolVar(&v.targetNAPI, "target-napi", false, "GRO on at the target's veth end, which gives it NAPI: needed by scan --tx xdp\n"+
			"(frames sent from XDP reach only a veth end with NAPI); off by default, as captures run there")
		addQueuesFlag(fs, &v.queues, &v.queuesFlag)
		fs.IntVar(&v.scanners, "scanners", 1, "scanner namespaces, each a \"host\" with its own link to the target: xdpscan-NAME-scan,\n"+
			"xdpscan-NAME-scan1, ... (198.19.I.1), for a fleet of shards (kernel target, IPv4)")
		v.configFlags(fs)
	}
	if sub == "down" {
		fs.BoolVar(&v.all, "all", false, "remove every xdpscan testbed namespace on this host")
	}
	return v, &flagSetWithUsage{fs}
}

type testbedFlagValues struct {
	name, rangeStr, range6, ports, udpPorts, target string
	filteredFrom, prohibitedFrom                    uint
	rps, all, icmpLimit, ipv6, targetNAPI           bool
	queues                                          int
	queuesFlag                                      bool // --queues is registered (up)
	scanners                                        int
}

// configFlags registers the flags that define a testbed (up, and the serve
// process up starts with the same values).
func (v *testbedFlagValues) configFlags(fs *flag.FlagSet) {
	fs.StringVar(&v.udpPorts, "udp-open-ports", "53,123", "UDP ports with a service on every unfiltered address (at most 16)")
	fs.UintVar(&v.prohibitedFrom, "prohibited-from", 0, "answer ICMP admin prohibited for last octets from here up to --filtered-from (0: none)")
	fs.BoolVar(&v.icmpLimit, "icmp-limit", false, "keep the target kernel's default ICMP rate limits (closed UDP ports then answer ~1000/s)")
	fs.BoolVar(&v.ipv6, "ipv6", false, "IPv6 mode: the target also answers for "+testbed.DefaultRange6.String()+" (kernel target)")
	fs.StringVar(&v.range6, "range6", "", "IPv6 mode with this target range instead (inside 2001:2::/48, at most a /104)")
}

func (v *testbedFlagValues) config() (testbed.Config, error) {
	if v.queuesFlag {
		if err := checkQueues(v.queues); err != nil {
			return testbed.Config{}, err
		}
	}
	cfg := testbed.Config{Name: v.name, Target: testbed.Target(v.target), RPS: v.rps, TargetNAPI: v.targetNAPI, ICMPLimit: v.icmpLimit, Queues: v.queues, Scanners: v.scanners}
	if v.ipv6 {
		cfg.Range6 = testbed.DefaultRange6
	}
	// Every flag is parsed; the first refusal, in this order, is the one told.
	for _, err := range []error{
		portsFlag("--udp-open-ports", v.udpPorts, &cfg.UDPOpenPorts),
		octetFlag("--prohibited-from", v.prohibitedFrom, &cfg.ProhibitedFrom),
		prefixFlag("--range6", v.range6, &cfg.Range6),
		prefixFlag("--range", v.rangeStr, &cfg.Range),
		portsFlag("--open-ports", v.ports, &cfg.OpenPorts),
		octetFlag("--filtered-from", v.filteredFrom, &cfg.FilteredFrom),
	} {
		if err != nil {
			return cfg, err
		}
	}
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return cfg, usageError("%v", err)
	}
	return cfg, nil
}

// portsFlag parses the port list s of flag name into *dst; an empty s
// leaves *dst as it is.
func portsFlag(name, s string, dst *[]uint16) error {
	if s == "" {
		return nil
	}
	ports, err := targets.ParsePorts(s)
	if err != nil {
		return usageError("%s: %v", name, err)
	}
	*dst = ports
	return nil
}

// prefixFlag parses the prefix s of flag name into *dst; an empty s leaves
// *dst as it is.
func prefixFlag(name, s string, dst *netip.Prefix) error {
	if s == "" {
		return nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return usageError("%s %q: %v", name, s, err)
	}
	*dst = p
	return nil
}

// octetFlag stores the last-octet value v of flag name in *dst.
func octetFlag(name string, v uint, dst *uint8) error {
	if v > 255 {
		return usageError("%s %d: an octet is 0 to 255", name, v)
	}
	*dst = uint8(v)
	return nil
}

func runTestbed(args []string) error {
	if len(args) == 0 {
		return usageError("testbed: say up, down or status (see `xdpscan testbed --help`)")
	}
	if args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Print(testbedUsage)
		_, fs := testbedFlags("up")
		finishFlags(fs.fs)
		printFlagGroups(os.Stdout, fs.fs, helpWidth(os.Stdout))
		return nil
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "up", "down", "status", "serve":
	default:
		return usageError("testbed %q: say up, down or status (see `xdpscan testbed --help`)", sub)
	}
	v, fs := testbedFlags(sub)
	if sub == "serve" {
		fs.fs.StringVar(&v.rangeStr, "range", "", "")
		fs.fs.StringVar(&v.ports, "open-ports", "", "")
		fs.fs.UintVar(&v.filteredFrom, "filtered-from", 240, "")
		fs.fs.StringVar(&v.target, "target", "kernel", "")
		v.configFlags(fs.fs)
	}
	if _, err := parseFlags(fs.fs, rest); err != nil {
		return err
	}
	// Every subcommand, not only up: the name becomes paths and commands.
	if err := testbed.ValidName(v.name); err != nil && !(sub == "down" && v.all) {
		return usageError("testbed %s: --name: %v", sub, err)
	}
	switch sub {
	case "up":
		return testbedUp(v)
	case "down":
		return testbedDown(v)
	case "status":
		return testbedStatus(v.name)
	default:
		return testbedServe(v)
	}
}

type flagSetWithUsage struct{ fs *flag.FlagSet }

func testbedUp(v *testbedFlagValues) error {
	cfg, err := v.config()
	if err != nil {
		return err
	}
	tb, err := testbed.Up(cfg)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		tb.Down()
		return fmt.Errorf("find own executable: %w", err)
	}
	pid, err := testbed.SpawnServe(append([]string{self}, serveArgs(cfg)...))
	if err != nil {
		tb.Down()
		return err
	}
	if err := testbed.WriteState(testbed.UpState{Config: cfg, ServePID: pid}); err != nil {
		return err
	}
	fmt.Printf("testbed %q up: %s target, range %s, open ports %v, filtered last octet >= %d (serve pid %d)\n",
		cfg.Name, cfg.Target, cfg.Range, cfg.OpenPorts, cfg.FilteredFrom, pid)
	fmt.Printf("scanner: ip netns exec %s xdpscan ... (interface %s, %s)\n", cfg.ScanNS(), testbed.ScanIf, testbed.ScanIP)
	if cfg.Range6.IsValid() {
		fmt.Printf("IPv6: target range %s, scanner %s (allow it with --allow 2001:2::/48)\n", cfg.Range6, testbed.ScanIP6)
	}
	return nil
}

// serveArgs are the arguments of the background `testbed serve` that
// makes cfg's target answer: the flags that define it, parsed back by
// runTestbed.
func serveArgs(cfg testbed.Config) []string {
	args := []string{"testbed", "serve", "--name", cfg.Name, "--range", cfg.Range.String(),
		"--open-ports", joinPorts(cfg.OpenPorts), "--udp-open-ports", joinPorts(cfg.UDPOpenPorts),
		"--filtered-from", fmt.Sprint(cfg.FilteredFrom), "--prohibited-from", fmt.Sprint(cfg.ProhibitedFrom),
		fmt.Sprintf("--icmp-limit=%t", cfg.ICMPLimit), "--target", string(cfg.Target)}
	if cfg.Range6.IsValid() {
		args = append(args, "--range6", cfg.Range6.String())
	}
	return args
}

func joinPorts(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

// testbedServe holds the target's sockets or XDP link until SIGTERM.
func testbedServe(v *testbedFlagValues) error {
	cfg, err := v.config()
	if err != nil {
		fmt.Println(err)
		return err
	}
	return testbed.ServeUntilSignal(cfg, os.Stdout)
}

func testbedDown(v *testbedFlagValues) error {
	if !v.all {
		cfg := testbed.Config{Name: v.name}
		if !testbed.Exists(cfg) && !testbed.HasState(v.name) {
			return fmt.Errorf("testbed %q is not up: nothing to take down (`ip netns list` shows the testbeds, as xdpscan-NAME-scan)", v.name)
		}
		return takeDown(v.name)
	}
	names, err := testbed.Names()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := testbed.ValidName(name); err != nil {
			// Not made by this version's up (a namespace someone named
			// by hand): its namespaces go, but it has no state file here.
			if err := testbed.Remove(testbed.Config{Name: name}); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Printf("testbed %q down\n", name)
			continue
		}
		if err := takeDown(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// takeDown stops name's serve process and removes its namespaces and its
// state file.
func takeDown(name string) error {
	testbed.StopServe(name)
	if err := testbed.Remove(testbed.Config{Name: name}); err != nil {
		return err
	}
	if err := testbed.RemoveState(name); err != nil {
		return err
	}
	fmt.Printf("testbed %q down\n", name)
	return nil
}

func testbedStatus(name string) error {
	st, err := testbed.ReadState(name)
	if err != nil {
		return err
	}
	cfg := st.Config
	alive := "stopped"
	if testbed.ProcessAlive(st.ServePID) {
		alive = "running"
	}
	fmt.Printf("testbed %q: %s target (serve pid %d, %s)\n", cfg.Name, cfg.Target, st.ServePID, alive)
	fmt.Printf("  scanner  netns %s, %s %s %s\n", cfg.ScanNS(), testbed.ScanIf, testbed.ScanIP, testbed.ScanMAC)
	fmt.Printf("  target   netns %s, %s %s %s, owns %s\n", cfg.TargetNS(), testbed.TargetIf, testbed.TargetIP, testbed.TargetMAC, cfg.Range)
	if cfg.Range6.IsValid() {
		fmt.Printf("  IPv6     scanner %s, target %s, owns %s (same rules by the last byte)\n", testbed.ScanIP6, testbed.TargetIP6, cfg.Range6)
	}
	tally := cfg.Tally(cfg.Range, cfg.OpenPorts[:1])
	addrs := tally[testbed.Open] + tally[testbed.Filtered] + tally[testbed.Prohibited]
	fmt.Printf("  truth    %d addresses; %d filtered (last octet >= %d), %d answer\n", addrs, tally[testbed.Filtered], cfg.FilteredFrom, tally[testbed.Open])
	fmt.Printf("           TCP ports %v and UDP ports %v: open on every answering address; every other port: closed\n",
		cfg.OpenPorts, cfg.UDPOpenPorts)
	if cfg.ProhibitedFrom != 0 {
		fmt.Printf("           last octet %d-%d: ICMP admin prohibited\n", cfg.ProhibitedFrom, cfg.FilteredFrom-1)
	}
	if rsts, err := testbed.SNMP(cfg.ScanNS(), "Tcp", "OutRsts"); err == nil {
		fmt.Printf("  scanner kernel sent %d TCP RSTs\n", rsts)
	}
	if tb, err := testbed.Existing(cfg); err == nil {
		if n, err := tb.FilteredDrops(); err == nil {
			fmt.Printf("  target dropped %d probes to filtered addresses\n", n)
		}
	}
	return nil
}
