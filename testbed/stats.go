package testbed

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// SNMP reads one counter of /proc/net/snmp inside ns, e.g. ("Tcp",
// "OutRsts"): the namespace kernel's own count of what it sent.
func SNMP(ns, group, name string) (uint64, error) {
	out, err := commandOutput("ip", "netns", "exec", ns, "cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var header []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != group+":" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == name && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		return 0, fmt.Errorf("no %s %s in /proc/net/snmp of %s", group, name, ns)
	}
	return 0, fmt.Errorf("no %s group in /proc/net/snmp of %s", group, ns)
}

// FilteredDrops is the target's nftables counter of dropped probes.
func (tb *Testbed) FilteredDrops() (uint64, error) {
	out, err := commandOutput("ip", "netns", "exec", tb.TargetNS(), "nft", "list", "chain", "inet", "xdpscan_testbed", "prerouting")
	if err != nil {
		return 0, err
	}
	// One drop rule per family, each with its counter.
	parts := strings.Split(out, "counter packets ")
	if len(parts) < 2 {
		return 0, fmt.Errorf("no counter in the testbed's nftables chain")
	}
	var total uint64
	for _, part := range parts[1:] {
		n, err := strconv.ParseUint(strings.Fields(part)[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read the testbed's nftables counter: %w", err)
		}
		total += n
	}
	return total, nil
}
