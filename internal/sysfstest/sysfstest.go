// Package sysfstest builds fake /sys and /proc trees for tests of code
// that reads them from a root it is given (netdev.SysRoot).
package sysfstest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Root writes files (path relative to the root: content, a newline
// added) into a new directory and returns it.
func Root(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, s := range files {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Use points *root at dir for the rest of the test.
func Use(t testing.TB, root *string, dir string) {
	t.Helper()
	old := *root
	*root = dir
	t.Cleanup(func() { *root = old })
}

// Online is the CPU list of n CPUs from 0, as
// /sys/devices/system/cpu/online has it.
func Online(n int) string {
	if n == 1 {
		return "0"
	}
	return "0-" + strconv.Itoa(n-1)
}
