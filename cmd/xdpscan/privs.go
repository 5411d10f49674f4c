package main

import (
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/internal/privs"
	"github.com/xdpscan/xdpscan/loader"
)

// pathNeeds is what one way of running a subcommand asks of the kernel.
type pathNeeds struct {
	name string // as the user wrote it: "scan", "capture --rx pcap"
	// xdp: loads an XDP program (CAP_BPF; XDP is one of the "net admin"
	// program types, so loading it also needs CAP_NET_ADMIN) and attaches
	// it (CAP_NET_ADMIN).
	xdp bool
	// raw: opens an AF_PACKET socket, the probe transmitter or libpcap's
	// capture socket (CAP_NET_RAW).
	raw bool
}

func (p pathNeeds) caps() privs.Set {
	var s privs.Set
	if p.xdp {
		s |= privs.Of(privs.CapBPF, privs.CapNetAdmin)
	}
	if p.raw {
		s |= privs.Of(privs.CapNetRaw)
	}
	return s
}

// scanNeeds is the scan's path: XDP when it receives or sends with XDP, a
// raw socket when it sends from one (--tx socket) or receives with libpcap
// (--rx pcap, which loads nothing), nothing at all for --connect.
func scanNeeds(rx, tx string, connect bool) pathNeeds {
	name := "scan"
	if connect {
		return pathNeeds{name: "scan --connect"}
	}
	if rx != "xdp" {
		name += " --rx " + rx
	}
	if tx != "socket" {
		name += " --tx " + tx
	}
	return pathNeeds{name: name, xdp: rx == "xdp" || tx == "xdp", raw: rx == "pcap" || tx == "socket"}
}

// captureNeeds: XDP captures need no raw socket; libpcap's does, and loads
// nothing (its classic BPF filter needs no privilege).
func captureNeeds(rx string) pathNeeds {
	if rx == "pcap" {
		return pathNeeds{name: "capture --rx pcap", raw: true}
	}
	return pathNeeds{name: "capture", xdp: true}
}

var monitorNeeds = pathNeeds{name: "monitor", xdp: true}

// binaryCaps are the file capabilities that let every subcommand run:
// what the setcap line grants.
var binaryCaps = privs.Of(privs.CapBPF, privs.CapNetAdmin, privs.CapNetRaw)

// runKeep is what a scan, capture or monitor keeps once set up: nothing.
// Measured, not assumed: the drop is the default, so every e2e test runs
// its phase with this empty set (--tx xdp with and without the relay,
// --rx pcap, libpcap and XDP captures, monitor included), and
// TestCapabilitiesAfterSetup reads the sets of every thread. The run phase only uses descriptors opened during
// setup, and the kernel checks capabilities when a program is loaded, a
// map created, a link attached or a socket opened, not when they are used:
//   - BPF_PROG_RUN (--tx xdp's live-frames transmit) takes the program's
//     fd and checks no capability;
//   - map reads (the counters) and the ring buffer (mmapped, epoll) are
//     reads through fds;
//   - sendmmsg on the already-open AF_PACKET socket and libpcap's reads of
//     its TPACKET ring check nothing more;
//   - reading the interface's counters over rtnetlink (RTM_GETLINK) is
//     open to everyone;
//   - detaching is closing the bpf_link's fd, which needs no privilege
//     (the kernel would detach it by itself when the process dies).
const runKeep privs.Set = 0

// setcapHint is the one line that makes this binary work for every
// subcommand without root.
func setcapHint() string {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return fmt.Sprintf("setcap %s+ep %s, or run as root", binaryCaps.Setcap(), self)
}

// errMissing is a preflight refusal: the capabilities the path needs and
// this process lacks.
type errMissing struct {
	path    string
	missing privs.Set
}

func (e *errMissing) Error() string {
	names := make([]string, 0, 3)
	for _, c := range e.missing.Caps() {
		names = append(names, c.String())
	}
	list := names[0]
	if n := len(names); n > 1 {
		list = strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	}
	return fmt.Sprintf("%s needs %s (missing): %s", e.path, list, setcapHint())
}

// preflight tries what p needs, so the user learns before anything is set
// up, and exactly, what is missing: it loads a two-instruction XDP program
// (the kernel's own check of CAP_BPF and CAP_NET_ADMIN, and of whatever
// else refuses a load here: a sysctl, an LSM), opens and closes an
// AF_PACKET socket (CAP_NET_RAW). Attaching needs CAP_NET_ADMIN, which the
// load of an XDP program already demands (bpf_net_capable), so it is not
// tried: attaching anything to a real interface would disturb it.
// A refusal is an *errMissing when capabilities explain it.
func preflight(p pathNeeds) error {
	cur, err := privs.Current()
	if err != nil {
		return nil // cannot tell: let the kernel answer when it is used
	}
	var missing privs.Set
	var other []string
	if p.xdp {
		if err := tryLoadXDP(); err != nil {
			need := privs.Of(privs.CapBPF, privs.CapNetAdmin)
			if cur.Eff.Has(privs.CapSysAdmin) { // stands in for both: the refusal is something else
				need = 0
			}
			if m := need &^ cur.Eff; m != 0 && errors.Is(err, unix.EPERM) {
				missing |= m
			} else {
				other = append(other, fmt.Sprintf("loading an XDP program: %v", err))
			}
		}
	}
	if p.raw {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		switch {
		case err == nil:
			unix.Close(fd)
		case errors.Is(err, unix.EPERM) && !cur.Eff.Has(privs.CapNetRaw):
			missing |= privs.Of(privs.CapNetRaw)
		default:
			other = append(other, fmt.Sprintf("opening an AF_PACKET socket: %v", err))
		}
	}
	if missing != 0 {
		return &errMissing{path: p.name, missing: missing}
	}
	if len(other) > 0 {
		return fmt.Errorf("%s cannot run here: %s", p.name, strings.Join(other, "; "))
	}
	return nil
}

// tryLoadXDP loads and closes the smallest XDP program: return XDP_PASS.
func tryLoadXDP() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpscan_probe", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

// requireCaps is preflight for the bench, which scans and captures:
// exit status 77 (EX_NOPERM) when something is missing.
func requireCaps(needBPF bool) error {
	if err := preflight(pathNeeds{name: "bench", xdp: needBPF, raw: true}); err != nil {
		return &exitError{code: 77, err: err}
	}
	return nil
}

// userFlag adds -Z/--user, tcpdump's name: the account to go on as once
// set up, when started as root.
func userFlag(fs *flag.FlagSet) *string {
	u := fs.String("Z", "", "after setup, drop root and go on as USER (its groups too); files already\n"+
		"created are handed to USER, as tcpdump -Z does (needs root)")
	fs.StringVar(u, "user", "", "same as -Z")
	return u
}

// lookupRunUser checks -Z's value before anything is set up.
func lookupRunUser(cmd, name string) (*privs.User, error) {
	if name == "" {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, usageError("%s: -Z %s: switching user needs root (this process runs as uid %d)", cmd, name, os.Geteuid())
	}
	u, err := privs.LookupUser(name)
	if err != nil {
		return nil, usageError("%s: -Z: %v", cmd, err)
	}
	return u, nil
}

// dropAfter is ready followed by the drop of every capability the run
// phase does not need (runKeep), on every thread, with the ambient and
// inheritable sets cleared, the bounding set dropped where CAP_SETPCAP
// allows, and no_new_privs set; as user when given (-Z), handing it
// paths, the outputs created so far. The scan or capture calls it once the programs
// are attached, the sockets and rings open, before the first probe or
// packet.
func dropAfter(ready func() error, user *privs.User, paths ...string) func() error {
	return func() error {
		if ready != nil {
			if err := ready(); err != nil {
				return err
			}
		}
		var err error
		if user != nil {
			_, err = privs.RestrictAs(user, paths, runKeep)
		} else {
			_, err = privs.Restrict(runKeep)
		}
		if err != nil {
			return fmt.Errorf("after setup: %w", err)
		}
		return nil
	}
}

// canRun says whether this host and process can run p, by trying: the
// preflight, then loading the real program (the verifier's verdict),
// without attaching it anywhere.
func canRun(p pathNeeds, load func() error) error {
	if err := preflight(p); err != nil {
		return err
	}
	if p.xdp && load != nil {
		return load()
	}
	if !p.xdp && !p.raw { // --connect: kernel sockets
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open a TCP socket: %w", err)
		}
		unix.Close(fd)
	}
	return nil
}

func loadScanProgram() error {
	p, err := loader.LoadScan(loader.ScanConfig{SourcePortLo: 1, SourcePortHi: 0xffff})
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// loadCaptureProgram loads the capture program with a port filter, as a
// capture loads it: the translated filter is part of what the verifier
// checks, and a port filter reads after an IPv4 header of variable length.
func loadCaptureProgram() error { return loadCaptureFilter("tcp port 80") }

func loadCaptureFilter(expr string) error {
	p, err := capture.LoadXDP(capture.Config{Filter: expr, Snaplen: 128})
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// verboseFlag adds --verbose: the verifier's whole log when it refuses a
// program (XDPSCAN_VERIFIER_LOG=1 does the same).
func verboseFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("verbose", false, "when the kernel's verifier refuses a program, show its whole log (also: XDPSCAN_VERIFIER_LOG=1)")
}

// rawOrConnect checks the raw scan's capabilities before anything is set
// up. A plain user (none of them) who chose no path (--rx, --tx) can only
// mean the unprivileged scan: it falls back to --connect, with a notice.
// Anyone else meant the raw path and is told exactly what is missing
// (exit status 77, EX_NOPERM).
func rawOrConnect(f *scanFlags) error {
	need := scanNeeds(f.rx, f.tx, false)
	err := preflight(need)
	if err == nil {
		return nil
	}
	var m *errMissing
	chosen := f.rx != "xdp" || f.tx != "socket"
	if !errors.As(err, &m) || m.missing != need.caps() || chosen {
		return &exitError{code: 77, err: err}
	}
	if f.ping || f.pingFirst {
		return &exitError{code: 77, err: fmt.Errorf("%v\n(--ping needs a raw socket: the unprivileged --connect scan cannot send ICMP echo)", err)}
	}
	fmt.Fprintf(os.Stderr, "xdpscan: notice: no privilege for raw probes and XDP (%v);\n  falling back to --connect (kernel sockets: slower, same results)\n", err)
	f.connect = true
	return nil
}
