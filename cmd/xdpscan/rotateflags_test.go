package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestRotationFlags: -C, -G, -W and -z are checked before setup; each
// mistake is a usage error that names it.
func TestRotationFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.pcapng")
	tests := []struct {
		name      string
		o         rotationOpts
		out       string
		countOnly bool
		wantBytes int64
		wantErr   string
	}{
		{"no rotation", rotationOpts{}, out, false, 0, ""},
		{"-C in million bytes", rotationOpts{size: "2"}, out, false, 2_000_000, ""},
		{"-C in KiB", rotationOpts{size: "100k"}, out, false, 102_400, ""},
		{"-C in MiB", rotationOpts{size: "3M"}, out, false, 3 << 20, ""},
		{"-G with strftime", rotationOpts{every: 60, files: 24}, filepath.Join(dir, "cap-%H%M%S.pcap"), false, 0, ""},
		{"-C 0", rotationOpts{size: "0"}, out, false, 0, "-C 0: a whole number"},
		{"-C not a number", rotationOpts{size: "big"}, out, false, 0, "-C big: a whole number"},
		{"-G negative", rotationOpts{every: -1}, out, false, 0, "-G -1: seconds"},
		{"-W alone", rotationOpts{files: 3}, out, false, 0, "-W 3 needs -C or -G"},
		{"-z alone", rotationOpts{post: "gzip"}, out, false, 0, "-z gzip needs -C or -G"},
		{"-z not a program", rotationOpts{size: "1", post: "no-such-program-xdpscan"}, out, false, 0, "give a program"},
		{"rotation to stdout", rotationOpts{size: "1"}, "-", false, 0, "name one with -w FILE"},
		{"rotation without -w", rotationOpts{every: 1}, "", false, 0, "name one with -w FILE"},
		{"rotation with --count-only", rotationOpts{size: "1"}, "", true, 0, "--count-only writes none"},
		{"missing directory", rotationOpts{size: "1"}, filepath.Join(dir, "nope", "out.pcap"), false, 0, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.check(tc.out, tc.countOnly)
			if tc.wantErr == "" {
				if err != nil || tc.o.sizeBytes != tc.wantBytes {
					t.Errorf("got %d bytes, %v; want %d", tc.o.sizeBytes, err, tc.wantBytes)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want a usage error with %q", err, tc.wantErr)
			}
		})
	}
}
