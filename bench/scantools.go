package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
)

// ScanTools are the scanners `bench scan` knows, in their default order.
// "xdpscan-xdptx" is xdpscan sending from the kernel (--tx xdp).
// "sendmmsg" is not a scanner: it is the bare send loop (bench flood) on
// the same link, the ceiling a socket sender can reach.
var ScanTools = []string{"xdpscan", "xdpscan-xdptx", "xdpscan-pcap", "masscan", "zmap", "sendmmsg"}

// maxRate is the rate asked for when a tool runs at its maximum: every
// tool here treats it as "as fast as you can".
const maxRate = 100_000_000

// scanJob is one tool run's work.
type scanJob struct {
	self   string // the xdpscan binary
	tb     testbed.Config
	prefix netip.Prefix
	ports  []uint16
	rate   float64 // 0: maximum
	waitS  int
	dir    string // scratch directory for the tool's output
	cpu    int    // the CPU the tool is pinned to (ScanOptions.Split); -1: none
}

func (j scanJob) rateArg() string {
	if j.rate <= 0 {
		return strconv.Itoa(maxRate)
	}
	return strconv.FormatFloat(j.rate, 'f', 0, 64)
}

func (j scanJob) portList() string {
	s := make([]string, len(j.ports))
	for i, p := range j.ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// toolOutput is what a tool reported: open (address, port) pairs, in the
// order reported, duplicates included.
type toolOutput struct {
	open      []netip.AddrPort
	probes    uint64  // as the tool counted them, 0 if it does not say
	relayCPUS float64 // xdpscan --tx-relay-cpu's kernel thread
}

// runScanTool runs one tool on j and returns its reports and its usage.
// It is pinned to j.cpu (see ScanOptions.Split).
func runScanTool(ctx context.Context, tool string, j scanJob) (toolOutput, Usage, error) {
	ns := j.tb.ScanNS()
	switch tool {
	case "xdpscan", "xdpscan-xdptx", "xdpscan-pcap":
		out := filepath.Join(j.dir, tool+".list")
		args := []string{"scan", j.prefix.String(), "-p", j.portList(), "--allow", "198.18.0.0/15",
			"--rate", j.rateArg(), "--wait", fmt.Sprintf("%ds", j.waitS), "-o", out, "--format", "list", "--status", "none",
			"--stats-json", out + ".json"}
		switch tool {
		case "xdpscan-pcap":
			args = append(args, "--rx", "pcap")
		case "xdpscan-xdptx":
			args = append(args, "--tx", "xdp")
			if j.cpu >= 0 { // split: the tool on j.cpu, the transmit on the other
				args = append(args, "--tx-relay-cpu", strconv.Itoa(relayCPU))
			}
		}
		res, err := runTool(toolCmd(ctx, ns, j.cpu, j.self, args...))
		if err != nil {
			return toolOutput{}, res.Usage, err
		}
		open, err := readList(out)
		if err != nil {
			return toolOutput{}, res.Usage, err
		}
		var st struct {
			ProbesSent uint64  `json:"probes_sent"`
			RelayCPUS  float64 `json:"tx_relay_cpu_s"`
		}
		if b, err := os.ReadFile(out + ".json"); err == nil {
			_ = json.Unmarshal(b, &st)
		}
		return toolOutput{open: open, probes: st.ProbesSent, relayCPUS: st.RelayCPUS}, res.Usage, nil
	case "masscan":
		out := filepath.Join(j.dir, "masscan.list")
		cmd := toolCmd(ctx, ns, j.cpu, "masscan", j.prefix.String(), "-p", j.portList(), "--rate", j.rateArg(),
			"--wait", strconv.Itoa(j.waitS), "--adapter", testbed.ScanIf, "--adapter-ip", testbed.ScanIP.String(),
			"--router-mac", testbed.TargetMAC.String(), "-oL", out)
		// masscan can wait forever on a link that went quiet after
		// --wait: a datagram every 200ms from the target lets it see
		// time pass and exit.
		stop := keepLinkAwake(j.tb)
		res, err := runTool(cmd)
		stop()
		if err != nil {
			return toolOutput{}, res.Usage, err
		}
		open, err := readList(out)
		return toolOutput{open: open}, res.Usage, err
	case "zmap":
		// zmap 2.1 scans one port per run: one run per port, costs summed.
		var total Usage
		var all toolOutput
		empty := filepath.Join(j.dir, "zmap-blocklist")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			return all, total, err
		}
		for _, port := range j.ports {
			out := filepath.Join(j.dir, fmt.Sprintf("zmap-%d.csv", port))
			res, err := runTool(toolCmd(ctx, ns, j.cpu, "zmap", "-q", "-p", strconv.Itoa(int(port)), "-i", testbed.ScanIf,
				"-G", testbed.TargetMAC.String(), "-S", testbed.ScanIP.String(), "-b", empty, "-r", j.rateArg(),
				"-c", strconv.Itoa(j.waitS), "-o", out, "-f", "saddr", "--disable-syslog", j.prefix.String()))
			total.WallS += res.WallS
			total.UserS += res.UserS
			total.SysS += res.SysS
			total.PeakRSSMB = max(total.PeakRSSMB, res.PeakRSSMB)
			if err != nil {
				return all, total, err
			}
			addrs, err := readAddrs(out)
			if err != nil {
				return all, total, err
			}
			for _, a := range addrs {
				all.open = append(all.open, netip.AddrPortFrom(a, port))
			}
		}
		return all, total, nil
	case "sendmmsg":
		count := probeCount(j.prefix, len(j.ports))
		// SYNs to a filtered address: the target drops them at its first
		// hook (nftables or the responder's XDP), so only sending counts.
		res, err := runTool(toolCmd(ctx, ns, j.cpu, j.self, "bench", "flood", "-i", testbed.ScanIf,
			"--frame", "syn", "--dst", filteredAddr(j.tb).String(), "--count", strconv.FormatUint(count, 10)))
		if err != nil {
			return toolOutput{}, res.Usage, err
		}
		var fr FloodResult
		if err := json.Unmarshal(res.Stdout, &fr); err != nil {
			return toolOutput{}, res.Usage, fmt.Errorf("bench flood output: %w", err)
		}
		return toolOutput{probes: fr.Sent}, res.Usage, nil
	}
	return toolOutput{}, Usage{}, fmt.Errorf("unknown scan tool %q: use %v", tool, ScanTools)
}

// toolInstalled says whether tool can run here, and how to get it if not.
func toolInstalled(tool string) (ok bool, hint string) {
	bin := map[string]string{"masscan": "masscan", "zmap": "zmap", "tcpdump": "tcpdump"}[tool]
	if bin == "" {
		return true, ""
	}
	if _, err := exec.LookPath(bin); err != nil {
		return false, fmt.Sprintf("%s is not installed: apt-get install %s (or `make deps`)", bin, bin)
	}
	return true, ""
}

// installedTools keeps the tools that can run here; each missing one is
// recorded in skipped, with how to install it, and said on log.
func installedTools(tools []string, skipped map[string]string, log io.Writer) []string {
	var out []string
	for _, t := range tools {
		if ok, hint := toolInstalled(t); !ok {
			skipped[t] = hint
			fmt.Fprintf(log, "skipping %s: %s\n", t, hint)
			continue
		}
		out = append(out, t)
	}
	return out
}

// readList parses masscan's -oL format, which xdpscan --format list also
// writes: "open tcp 80 198.18.0.1 1700000000".
func readList(path string) ([]netip.AddrPort, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("%s:%d: not a list line: %q", path, line, sc.Text())
		}
		if f[0] != "open" {
			continue
		}
		port, err1 := strconv.ParseUint(f[2], 10, 16)
		addr, err2 := netip.ParseAddr(f[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad port or address: %q", path, line, sc.Text())
		}
		out = append(out, netip.AddrPortFrom(addr, uint16(port)))
	}
	return out, sc.Err()
}

// readAddrs parses zmap's saddr-only CSV (a "saddr" header, then one
// address per line).
func readAddrs(path string) ([]netip.Addr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "saddr" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not an address: %q", path, i+1, line)
		}
		out = append(out, a)
	}
	return out, nil
}

// keepLinkAwake sends one UDP datagram every 200ms from the target to the
// scanner's discard port until stop is called.
func keepLinkAwake(tb testbed.Config) (stop func()) {
	var conn net.Conn
	err := testbed.Do(tb.TargetNS(), func() (err error) {
		conn, err = net.Dial("udp4", netip.AddrPortFrom(testbed.ScanIP, 9).String())
		return err
	})
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = conn.Write([]byte("tick"))
			}
		}
	}()
	return func() { close(done); <-finished; conn.Close() }
}

// filteredAddr is an address of the testbed's range that never answers.
func filteredAddr(tb testbed.Config) netip.Addr {
	a := tb.Range.Masked().Addr().As4()
	a[3] = 250
	return netip.AddrFrom4(a)
}

// probeCount is the number of probes prefix × ports means.
func probeCount(prefix netip.Prefix, ports int) uint64 {
	return (uint64(1) << (32 - prefix.Bits())) * uint64(ports)
}
