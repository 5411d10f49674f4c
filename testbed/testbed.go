package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"

	"github.com/xdpscan/xdpscan/loader"
)

// Testbed is a live test network. Create it with Up; always Down it.
type Testbed struct {
	Config
	listeners []net.Listener
	services  []*udpService
	responder *loader.Responder
	attach    *loader.Attachment
}

// Up builds the namespaces, the link, the routes and the filter rule. The
// target answers only once Serve has run in a live process (the listening
// sockets and the responder's bpf_link belong to that process). On error
// everything already built is removed.
func Up(cfg Config) (tb *Testbed, err error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, tool := range []string{"ip", "nft", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("testbed needs %s: install iproute2, nftables and ethtool (`make deps`)", tool)
		}
	}
	tb = &Testbed{Config: cfg}
	if Exists(cfg) {
		return nil, fmt.Errorf("testbed %q is already up (namespace %s exists); `xdpscan testbed down --name %s` first",
			cfg.Name, cfg.ScanNS(), cfg.Name)
	}
	defer func() {
		if err != nil {
			tb.Down()
			tb = nil
		}
	}()
	s, t := cfg.ScanNS(), cfg.TargetNS()
	steps := [][]string{
		{"ip", "netns", "add", s},
		{"ip", "netns", "add", t},
	}
	for _, ns := range []string{s, t} {
		// Before the link exists: a new interface copies the "default"
		// settings. IPv6 off unless asked for; in IPv6 mode, no duplicate
		// address detection (the addresses are usable at once) and no
		// router solicitations or autoconfiguration.
		if cfg.Range6.IsValid() {
			steps = append(steps, []string{"ip", "netns", "exec", ns, "sysctl", "-qw",
				"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
				"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
				"net.ipv6.conf.default.router_solicitations=0", "net.ipv6.conf.default.autoconf=0"})
		} else {
			steps = append(steps, []string{"ip", "netns", "exec", ns, "sysctl", "-qw",
				"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"})
		}
		steps = append(steps, []string{"ip", "-n", ns, "link", "set", "lo", "up"})
	}
	steps = append(steps,
		// Created directly inside the namespaces: the pair never exists in
		// the root namespace, so nothing there can route to it.
		vethArgs(s, t, cfg.Queues))
	steps = append(steps,
		[]string{"ip", "netns", "exec", s, "ethtool", "-K", ScanIf, "tx", "off", "sg", "off", "tso", "off", "gso", "off", "gro", "off"},
		[]string{"ip", "netns", "exec", t, "ethtool", "-K", TargetIf, "tx", "off", "sg", "off", "tso", "off", "gso", "off", "gro", onOff(cfg.TargetNAPI)},
		[]string{"ip", "-n", s, "addr", "add", ScanIP.String() + "/24", "dev", ScanIf},
		[]string{"ip", "-n", t, "addr", "add", TargetIP.String() + "/24", "dev", TargetIf},
		[]string{"ip", "-n", s, "link", "set", ScanIf, "up"},
		[]string{"ip", "-n", t, "link", "set", TargetIf, "up"},
		[]string{"ip", "-n", s, "neigh", "replace", TargetIP.String(), "lladdr", TargetMAC.String(), "dev", ScanIf, "nud", "permanent"},
		[]string{"ip", "-n", t, "neigh", "replace", ScanIP.String(), "lladdr", ScanMAC.String(), "dev", TargetIf, "nud", "permanent"},
		// The only route out of the scanner: the target range, via the link.
		[]string{"ip", "-n", s, "route", "add", cfg.Range.String(), "via", TargetIP.String(), "dev", ScanIf},
		[]string{"ip", "-n", t, "route", "add", "local", cfg.Range.String(), "dev", "lo"},
		[]string{"ip", "netns", "exec", t, "sysctl", "-qw",
			"net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535", "net.ipv4.tcp_syncookies=1"},
	)
	if cfg.Range6.IsValid() {
		steps = append(steps,
			[]string{"ip", "-n", s, "-6", "addr", "add", ScanIP6.String() + "/64", "dev", ScanIf, "nodad"},
			[]string{"ip", "-n", t, "-6", "addr", "add", TargetIP6.String() + "/64", "dev", TargetIf, "nodad"},
			// No static neighbour entries, unlike IPv4: the scanner finds
			// the target's MAC by neighbour discovery, as on a real link.
			[]string{"ip", "-n", s, "-6", "route", "add", cfg.Range6.String(), "via", TargetIP6.String(), "dev", ScanIf},
			[]string{"ip", "-n", t, "-6", "route", "add", "local", cfg.Range6.String(), "dev", "lo"},
		)
		if !cfg.ICMPLimit {
			// net.ipv6.icmp.ratelimit is IPv6's per-host token bucket; the
			// global icmp_msgs_per_sec below covers both families.
			steps = append(steps, []string{"ip", "netns", "exec", t, "sysctl", "-qw", "net.ipv6.icmp.ratelimit=0"})
		}
	}
	if !cfg.ICMPLimit {
		// Every closed UDP port answers: no per-host token bucket
		// (icmp_ratelimit), no rate-limited types (icmp_ratemask), and no
		// global budget worth the name (icmp_msgs_per_sec).
		steps = append(steps, []string{"ip", "netns", "exec", t, "sysctl", "-qw",
			"net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_ratemask=0", "net.ipv4.icmp_msgs_per_sec=10000000",
			"net.ipv4.icmp_msgs_burst=10000000"})
	}
	steps = append(steps, cfg.scannerSteps()...)
	for _, step := range steps {
		if err := run(step...); err != nil {
			return tb, err
		}
	}
	if cfg.RPS {
		if err := tb.enableRPS(); err != nil {
			return tb, err
		}
	}
	if err := tb.spreadQueues(); err != nil {
		return tb, err
	}
	if err := tb.filterRule(); err != nil {
		return tb, err
	}
	return tb, nil
}

// Existing returns a handle on a testbed that is already up (built by another
// process), to Serve it or to Down it.
func Existing(cfg Config) (*Testbed, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !nsExists(cfg.ScanNS()) || !nsExists(cfg.TargetNS()) {
		return nil, fmt.Errorf("testbed %q is not up; `xdpscan testbed up --name %s`", cfg.Name, cfg.Name)
	}
	return &Testbed{Config: cfg}, nil
}

// Serve starts the target: the listeners (kernel target) or the XDP
// responder. They live until Down or until this process exits.
func (tb *Testbed) Serve() error {
	if tb.Target == TargetXDP {
		return tb.startResponder()
	}
	return tb.listen()
}

// filterRule makes the filtered slice silent in the target namespace.
func (tb *Testbed) filterRule() error {
	// The last byte of the destination: bits 152-159 of an IPv4 header,
	// 312-319 of an IPv6 one.
	drop := fmt.Sprintf("\t\tip daddr %s @nh,152,8 >= %d counter drop\n", tb.Range, tb.FilteredFrom)
	reject := fmt.Sprintf("\t\tip daddr %s @nh,152,8 >= %d counter reject with icmp type admin-prohibited\n", tb.Range, tb.ProhibitedFrom)
	if tb.Range6.IsValid() {
		drop += fmt.Sprintf("\t\tip6 daddr %s @nh,312,8 >= %d counter drop\n", tb.Range6, tb.FilteredFrom)
		reject += fmt.Sprintf("\t\tip6 daddr %s @nh,312,8 >= %d counter reject with icmpv6 type admin-prohibited\n", tb.Range6, tb.ProhibitedFrom)
	}
	rules := "table inet xdpscan_testbed {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -300; policy accept;\n" + drop + "\t}\n"
	if tb.ProhibitedFrom != 0 {
		// reject is valid in input, not prerouting; AnyIP traffic is local.
		rules += "\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n" + reject + "\t}\n"
	}
	rules += "}\n"
	cmd := exec.Command("ip", "netns", "exec", tb.TargetNS(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nftables rule in %s: %v: %s", tb.TargetNS(), err, bytes.TrimSpace(out))
	}
	return nil
}

func (tb *Testbed) enableRPS() error {
	return SetRPS(tb.Config, (1<<min(63, numCPU()))-1)
}

// SetRPS steers the receive softirqs of both veth ends to the CPUs in mask
// (bit n = CPU n; 0 turns RPS off: each packet is received on the CPU that
// sent it, veth's way).
func SetRPS(cfg Config, mask uint64) error {
	for _, x := range [][2]string{{cfg.ScanNS(), ScanIf}, {cfg.TargetNS(), TargetIf}} {
		cmd := fmt.Sprintf("for q in /sys/class/net/%s/queues/rx-*/rps_cpus; do echo %x > $q; done", x[1], mask)
		if err := run("ip", "netns", "exec", x[0], "sh", "-c", cmd); err != nil {
			return err
		}
	}
	return nil
}

func (tb *Testbed) startResponder() error {
	r, err := loader.LoadResponder(loader.ResponderConfig{Range: tb.Range, OpenPorts: tb.OpenPorts, FilteredFrom: tb.FilteredFrom})
	if err != nil {
		return err
	}
	tb.responder = r
	return Do(tb.TargetNS(), func() error {
		// Generic, not native: native XDP_TX on veth delivers only into a
		// peer whose own native XDP enabled NAPI, which a scanner without
		// XDP (masscan, zmap, xdpscan in generic mode) never has.
		a, err := loader.Attach(r.Program(), TargetIf, loader.ModeGeneric)
		tb.attach = a
		return err
	})
}

// ResponderCounters reads the XDP responder's counters.
func (tb *Testbed) ResponderCounters() (loader.Counters, error) {
	if tb.responder == nil {
		return loader.Counters{}, errors.New("testbed has no XDP responder (target is the kernel)")
	}
	return tb.responder.Counters()
}

func (tb *Testbed) listen() error {
	return Do(tb.TargetNS(), func() error {
		families := []bool{false}
		if tb.Range6.IsValid() {
			families = append(families, true)
		}
		for _, v6 := range families {
			network, any := "tcp4", "0.0.0.0"
			if v6 {
				network, any = "tcp6", "::" // Go makes a "tcp6" listener IPv6-only
			}
			for _, p := range tb.OpenPorts {
				ln, err := net.Listen(network, net.JoinHostPort(any, fmt.Sprint(p)))
				if err != nil {
					return fmt.Errorf("listen on %s port %d in %s: %w", network, p, tb.TargetNS(), err)
				}
				tb.listeners = append(tb.listeners, ln)
			}
			for _, p := range tb.UDPOpenPorts {
				s, err := listenUDP(p, v6)
				if err != nil {
					return fmt.Errorf("UDP service on port %d in %s: %w", p, tb.TargetNS(), err)
				}
				tb.services = append(tb.services, s)
			}
		}
		return nil
	})
}

// Down removes everything Up built. Safe to call more than once.
func (tb *Testbed) Down() error {
	tb.Stop()
	return Remove(tb.Config)
}

// Stop ends what Serve started (listeners, services, the responder) and
// leaves the namespaces.
func (tb *Testbed) Stop() {
	for _, ln := range tb.listeners {
		ln.Close()
	}
	tb.listeners = nil
	for _, s := range tb.services {
		s.close()
	}
	tb.services = nil
	if tb.attach != nil {
		tb.attach.Close()
		tb.attach = nil
	}
	if tb.responder != nil {
		tb.responder.Close()
		tb.responder = nil
	}
}

// Remove deletes a testbed's namespaces (which deletes the veth pair, the
// routes and the rules with them).
func Remove(cfg Config) error {
	var errs []error
	for _, ns := range append([]string{cfg.ScanNS(), cfg.TargetNS()}, cfg.extraScannerNamespaces()...) {
		if nsExists(ns) {
			if err := run("ip", "netns", "delete", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Exists says whether either of cfg's namespaces exists.
func Exists(cfg Config) bool { return nsExists(cfg.ScanNS()) || nsExists(cfg.TargetNS()) }

func nsExists(ns string) bool {
	var st syscall.Stat_t
	return syscall.Stat("/run/netns/"+ns, &st) == nil
}

// Namespaces lists the xdpscan testbed namespaces present on this host.
func Namespaces() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "xdpscan-") {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Exec returns a command that runs inside the scanner or target namespace.
func (tb *Testbed) Exec(ns string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
