package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTopPortsMatchNmap: --top-ports N is the port set nmap itself scans
// for --top-ports N, read from the scaninfo of nmap's XML. nmap runs in a
// new, empty network namespace (unshare -n): with no route it sends
// nothing, but prints its scaninfo first.
func TestTopPortsMatchNmap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (unshare -n, nmap -sS)")
	}
	services := regexp.MustCompile(`<scaninfo type="(syn|udp)" protocol="(tcp|udp)" numservices="(\d+)" services="([^"]*)"`)
	for _, tc := range []struct {
		proto string
		n     int
	}{{"tcp", 1}, {"tcp", 10}, {"tcp", 100}, {"tcp", 1000}, {"tcp", 5000}, {"udp", 10}, {"udp", 100}, {"udp", 1000}} {
		t.Run(fmt.Sprintf("%s %d", tc.proto, tc.n), func(t *testing.T) {
			scanType := "-sS"
			if tc.proto == "udp" {
				scanType = "-sU"
			}
			out, _ := exec.Command("unshare", "-n", "nmap", scanType, "--top-ports", strconv.Itoa(tc.n), "-n", "-Pn",
				"-oX", "-", "198.18.0.1").CombinedOutput()
			m := services.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no scaninfo in nmap's output:\n%s", out)
			}
			want := expandPorts(t, string(m[4]))
			if len(want) != tc.n {
				t.Fatalf("nmap lists %d ports, numservices %s", len(want), m[3])
			}
			got, err := topPorts(nmapServicesPath, tc.proto, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("top %d %s ports\n%v\nnmap's\n%v", tc.n, tc.proto, got, want)
			}
		})
	}
}

// expandPorts reads nmap's services attribute ("21-23,25,80").
func expandPorts(t *testing.T, s string) []uint16 {
	var ports []uint16
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("services %q: %v", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				t.Fatalf("services %q: %v", s, err)
			}
		}
		for p := a; p <= b; p++ {
			ports = append(ports, uint16(p))
		}
	}
	return ports
}

// TestForeignFlagHintsAreShort: the refusal of every other scanner's flag
// fits two rows of an 80-column terminal, "see" pointer included, and
// names the flag as typed.
func TestForeignFlagHintsAreShort(t *testing.T) {
	fs := newFlags("scan", "")
	for typed := range foreignFlags {
		hint, ok := foreignFlag(fs, typed, strings.TrimLeft(typed, "-"))
		if !ok {
			t.Errorf("%s: not refused", typed)
			continue
		}
		msg := "xdpscan: scan: " + hint + " (see `xdpscan scan --help`)"
		if len(msg) > 160 {
			t.Errorf("%s: %d columns: %s", typed, len(msg), msg)
		}
		if !strings.HasPrefix(hint, "xdpscan has no "+typed+" ") && !strings.HasPrefix(hint, "xdpscan has no "+typed+":") {
			t.Errorf("%s: %q does not say xdpscan has no %s", typed, hint, typed)
		}
	}
	// A flag the command has is its own, whatever another scanner means.
	withW := newFlags("capture", "")
	withW.String("w", "", "")
	if hint, ok := foreignFlag(withW, "-w", "w"); ok {
		t.Errorf("capture's -w refused: %s", hint)
	}
}
