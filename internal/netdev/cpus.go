package netdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SysRoot is where /sys and /proc are read from (tests point it
// elsewhere).
var SysRoot = "/"

// ReceivingCPUs are the CPUs on which an interface's received packets can
// meet XDP: its interrupts' CPUs and its receive queues' RPS CPUs; on a
// device without interrupts of its own (veth: the sender's CPU runs the
// receive) or with threaded NAPI, every online CPU.
func ReceivingCPUs(iface string) ([]int, string, error) {
	online, err := readCPUList(filepath.Join(SysRoot, "sys/devices/system/cpu/online"))
	if err != nil {
		return nil, "", fmt.Errorf("read online CPUs: %w", err)
	}
	dev := filepath.Join(SysRoot, "sys/class/net", iface)
	if b, err := os.ReadFile(filepath.Join(dev, "threaded")); err == nil && strings.TrimSpace(string(b)) == "1" {
		return online, "threaded NAPI: any online CPU", nil
	}
	set := map[int]bool{}
	irqs, _ := filepath.Glob(filepath.Join(dev, "device/msi_irqs/*"))
	if len(irqs) == 0 {
		irqs, _ = filepath.Glob(filepath.Join(dev, "device/../msi_irqs/*"))
	}
	for _, p := range irqs {
		cpus, err := readCPUList(filepath.Join(SysRoot, "proc/irq", filepath.Base(p), "effective_affinity_list"))
		if err != nil {
			continue
		}
		for _, c := range cpus {
			set[c] = true
		}
	}
	why := "interrupt CPUs"
	if len(set) == 0 {
		if len(irqs) > 0 {
			return online, "interrupt affinity unreadable: any online CPU", nil
		}
		return online, "no interrupts of its own (virtual device): any online CPU", nil
	}
	queues, _ := filepath.Glob(filepath.Join(dev, "queues/rx-*/rps_cpus"))
	for _, q := range queues {
		b, err := os.ReadFile(q)
		if err != nil {
			continue
		}
		for _, c := range cpuMask(strings.TrimSpace(string(b))) {
			set[c] = true
			why = "interrupt and RPS CPUs"
		}
	}
	var out []int
	for _, c := range online {
		if set[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return online, "interrupt CPUs offline: any online CPU", nil
	}
	return out, why, nil
}

// readCPUList reads a list like "0-3,8,10-11".
func readCPUList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("CPU list %q: %w", s, err)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// cpuMask reads a hex CPU mask like "00000000,00000003".
func cpuMask(s string) []int {
	var out []int
	words := strings.Split(s, ",")
	for i := range words {
		w, err := strconv.ParseUint(words[len(words)-1-i], 16, 32)
		if err != nil {
			return nil
		}
		for bit := 0; bit < 32; bit++ {
			if w&(1<<bit) != 0 {
				out = append(out, 32*i+bit)
			}
		}
	}
	return out
}
