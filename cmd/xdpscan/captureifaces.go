package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	flag "github.com/spf13/pflag"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/loader"
)

// captureIfaceList is -i given once or more, each a name or a comma-separated
// list (tcpdump takes one -i; several, as Wireshark's dumpcap takes them,
// capture into one pcapng with an interface block each).
type captureIfaceList []string

func (l *captureIfaceList) String() string { return strings.Join(*l, ",") }
func (l *captureIfaceList) Type() string   { return "iface" }
func (l *captureIfaceList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*l = append(*l, name)
		}
	}
	return nil
}

// captureCoresOpts are capture's flags for several interfaces and rings.
type captureCoresOpts struct {
	ifaces captureIfaceList
	rings  string
}

// addCaptureCoresFlags registers -i/--interface (repeatable) and --rings.
func addCaptureCoresFlags(fs *flag.FlagSet, o *captureCoresOpts) {
	fs.Var(&o.ifaces, "i", "interface (required); -i A -i B or -i A,B captures on several into one pcapng, an interface block each, packets in timestamp order")
	fs.Var(&o.ifaces, "interface", "same as -i")
	fs.StringVar(&o.rings, "rings", "auto", "ring buffers: auto (one per receiving CPU from 16 receiving CPUs up, else shared), shared (one for all CPUs) or per-cpu (merged in timestamp order); --stats-json \"rings\" says what was chosen")
}

// check validates the options for a capture on rx ("xdp" or "pcap").
func (o *captureCoresOpts) check(rx string) (loader.RingsMode, error) {
	mode, err := loader.ParseRingsMode(o.rings)
	if err != nil {
		return "", usageError("capture: %v", err)
	}
	seen := map[string]bool{}
	for _, name := range o.ifaces {
		if seen[name] {
			return "", usageError("capture: -i %s given twice: name each interface once", name)
		}
		seen[name] = true
	}
	if len(o.ifaces) > 1 && rx != "xdp" {
		return "", usageError("capture: several interfaces (-i %s) need --rx xdp: the libpcap path captures on one", o.ifaces.String())
	}
	return mode, nil
}

// checkCaptureIface checks a further -i interface as the first is checked.
func checkCaptureIface(name string) error {
	ifc, err := netInterface(name)
	if err != nil {
		return usageError("capture: interface %s: no such interface; see `ip link`", name)
	}
	if ifc.Flags&net.FlagUp == 0 {
		return usageError("capture: interface %s is down: bring it up first (ip link set dev %s up)", name, name)
	}
	return nil
}

// checkOutput refuses a pcap file for several interfaces: its one header
// names one link, and the packets could not say where they came from.
func (o *captureCoresOpts) checkOutput(out string, forcePcap bool) error {
	if len(o.ifaces) > 1 && out != "" && (forcePcap || strings.HasSuffix(out, ".pcap")) {
		return usageError("capture: -w %s: a pcap file has one interface; write pcapng (drop --pcap, or name the file .pcapng) to capture on %s", out, o.ifaces.String())
	}
	return nil
}

// printCoresSummary adds the per-interface counts and the rings' merge to
// the summary, where there is more than one of either.
func printCoresSummary(st capture.Stats) {
	for _, is := range st.Interfaces {
		fmt.Fprintf(os.Stderr, "xdpscan: %s: seen %d, matched %d, written %d, ring lost %d (%s)\n",
			is.Name, is.Seen, is.Matched, is.Written, is.RingLost, is.Hook)
	}
	if r := st.Rings; r != nil && (r.Rings > 1 || len(st.Interfaces) > 1) {
		fmt.Fprintf(os.Stderr, "xdpscan: %d rings (%s), merged in time order: %d records later than the %d ms window (written out of order, none lost)\n",
			r.Rings, r.Mode, r.Late, r.WindowNs/1e6)
	}
}

// interfacesDesc is the summary's "where" for a capture on several
// interfaces: "XDP generic on a, b", or each one's where they differ
// ("XDP native on a, TC on b"; auto mode chooses per interface).
func interfacesDesc(ifaces []capture.InterfaceStats) string {
	kind := func(is capture.InterfaceStats) string {
		if is.XDPMode == "" {
			return "TC"
		}
		return "XDP " + is.XDPMode
	}
	names := make([]string, len(ifaces))
	per := make([]string, len(ifaces))
	same := true
	for i, is := range ifaces {
		names[i] = is.Name
		per[i] = kind(is) + " on " + is.Name
		same = same && kind(is) == kind(ifaces[0])
	}
	if same {
		return kind(ifaces[0]) + " on " + strings.Join(names, ", ")
	}
	return strings.Join(per, ", ")
}
