package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/capture"
)

func TestTcpdumpFlagValues(t *testing.T) {
	page := uint32(os.Getpagesize())
	for _, tc := range []struct {
		name string
		kib  uint
		want uint32
		err  string
	}{
		{"default", 0, 0, ""},
		{"below a page: a page", 1, page, ""},
		{"a power of two stays", 2048, 2 << 20, ""},
		{"rounded up", 3000, 4 << 20, ""},
		{"too large", 2 << 20, 0, "-B 2097152"},
	} {
		t.Run("-B "+tc.name, func(t *testing.T) {
			o := tcpdumpOpts{bufferKiB: tc.kib}
			got, err := o.ringBytes()
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("-B %d: %d, %v; want %d, %q", tc.kib, got, err, tc.want, tc.err)
			}
		})
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("# web only\ntcp port 80   # http\n  or tcp port 443\n"), 0o644)
	o := tcpdumpOpts{filterFile: file}
	if expr, err := o.filterExpression(nil); err != nil || expr != "tcp port 80 or tcp port 443" {
		t.Fatalf("-F: %q, %v", expr, err)
	}
	if _, err := o.filterExpression([]string{"udp"}); err == nil {
		t.Fatal("-F and a filter on the command line: no error")
	}
}

// The summary says where each interface's packets were taken, in words
// that fit each: XDP with its mode, or TC.
func TestInterfacesDesc(t *testing.T) {
	xdp := func(name, mode string) capture.InterfaceStats {
		return capture.InterfaceStats{Name: name, XDPMode: mode, Hook: "xdp " + mode}
	}
	tc := func(name string) capture.InterfaceStats {
		return capture.InterfaceStats{Name: name, Hook: "tcx ingress, after the XDP program already attached"}
	}
	for _, tt := range []struct {
		name   string
		ifaces []capture.InterfaceStats
		want   string
	}{
		{"all generic", []capture.InterfaceStats{xdp("a", "generic"), xdp("b", "generic")}, "XDP generic on a, b"},
		{"all TC", []capture.InterfaceStats{tc("a"), tc("b"), tc("c")}, "TC on a, b, c"},
		{"mixed", []capture.InterfaceStats{tc("a"), xdp("b", "generic")}, "TC on a, XDP generic on b"},
		{"two modes", []capture.InterfaceStats{xdp("a", "native"), xdp("b", "generic")}, "XDP native on a, XDP generic on b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := interfacesDesc(tt.ifaces); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
