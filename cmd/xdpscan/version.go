package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"
)

// Capability bits from linux/capability.h.
const (
	capNetAdmin = 12
	capNetRaw   = 13
	capSysAdmin = 21
	capBPF      = 39
)

func runVersion(args []string) error {
	fs := newFlags("version", "xdpscan version")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Printf("xdpscan %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("kernel  %s\n", unix.ByteSliceToString(uts.Release[:]))

	var missing []string
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		missing = append(missing, "BTF (/sys/kernel/btf/vmlinux): not required to run, but a sign of an old or stripped kernel")
		fmt.Println("btf     no")
	} else {
		fmt.Println("btf     yes")
	}
	caps, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c uint) bool { return caps&(1<<c) != 0 }
	bpfOK := has(capBPF) || has(capSysAdmin)
	fmt.Printf("caps    CAP_BPF=%v CAP_NET_ADMIN=%v CAP_NET_RAW=%v\n", bpfOK, has(capNetAdmin), has(capNetRaw))
	if !bpfOK {
		missing = append(missing, "CAP_BPF (or CAP_SYS_ADMIN): needed to load XDP programs")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN: needed to attach XDP to an interface")
	}
	if !has(capNetRaw) {
		missing = append(missing, "CAP_NET_RAW: needed to send probes on a raw socket")
	}
	if len(missing) == 0 {
		fmt.Println("ready   this host can load and attach XDP programs")
		return nil
	}
	fmt.Println("missing:")
	for _, m := range missing {
		fmt.Println("  -", m)
	}
	fmt.Println("run as root, or: setcap cap_bpf,cap_net_admin,cap_net_raw+ep $(command -v xdpscan)")
	return nil
}

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &caps)
			return caps, err
		}
	}
	return 0, fmt.Errorf("no CapEff in /proc/self/status")
}

// requireCaps names every capability the chosen paths need and this process
// lacks, so the user fixes them all at once.
func requireCaps(needBPF bool) error {
	caps, err := effectiveCaps()
	if err != nil {
		return nil // cannot tell: let the kernel answer
	}
	has := func(c uint) bool { return caps&(1<<c) != 0 }
	var missing []string
	if needBPF && !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF (load the XDP program)")
	}
	if needBPF && !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN (attach it)")
	}
	if !has(capNetRaw) {
		missing = append(missing, "CAP_NET_RAW (send probes on a raw socket)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("not permitted: this scan needs CAP_BPF and CAP_NET_ADMIN (XDP) and CAP_NET_RAW; missing %s. "+
		"Run as root, or `setcap cap_bpf,cap_net_admin,cap_net_raw+ep %s`", strings.Join(missing, ", "), os.Args[0])
}
