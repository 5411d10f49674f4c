package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
