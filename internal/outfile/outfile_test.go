package outfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const old = "what the user had\n"

// setup makes a directory with an existing file "f" and a symbolic link
// "link" to it.
func setup(t *testing.T) (dir, file, link string) {
	t.Helper()
	dir = t.TempDir()
	file, link = filepath.Join(dir, "f"), filepath.Join(dir, "link")
	if err := os.WriteFile(file, []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	return dir, file, link
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// entries lists a directory: no temporary file may be left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestStream(t *testing.T) {
	tests := []struct {
		name     string
		appendTo bool
		write    string
		ok       bool
		want     string // the file afterwards; "-" for removed
		newFile  bool   // the path did not exist before
	}{
		{"failed run, nothing written: untouched", false, "", false, old, false},
		{"run ends well with nothing to write: emptied", false, "", true, "", false},
		{"first write replaces", false, "new\n", true, "new\n", false},
		{"append adds", true, "new\n", true, old + "new\n", false},
		{"append, failed run: untouched", true, "", false, old, false},
		{"created, failed run, nothing written: removed", false, "", false, "-", true},
		{"created and written", false, "new\n", true, "new\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, file, _ := setup(t)
			if tc.newFile {
				file = filepath.Join(dir, "new")
			}
			s, err := OpenStream(file, tc.appendTo)
			if err != nil {
				t.Fatal(err)
			}
			if tc.write != "" {
				if _, err := s.Write([]byte(tc.write)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(tc.ok); err != nil {
				t.Fatal(err)
			}
			if tc.want == "-" {
				if _, err := os.Lstat(file); !os.IsNotExist(err) {
					t.Fatalf("%s still exists (%v)", file, err)
				}
				return
			}
			if got := content(t, file); got != tc.want {
				t.Errorf("file holds %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNoSymlinkFollowed(t *testing.T) {
	tests := []struct {
		name string
		open func(link string) error
	}{
		{"Check", func(l string) error { return Check(l, false) }},
		{"Check replace", func(l string) error { return Check(l, true) }},
		{"OpenStream", func(l string) error { _, err := OpenStream(l, false); return err }},
		{"OpenStream append", func(l string) error { _, err := OpenStream(l, true); return err }},
		{"CreateReplace", func(l string) error { _, err := CreateReplace(l, 0o644); return err }},
		{"WriteFile private", func(l string) error { return WriteFile(l, []byte("x"), 0o600) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, file, link := setup(t)
			err := tc.open(link)
			if err == nil || !strings.Contains(err.Error(), "is a symbolic link (to "+file+"): not following it") {
				t.Fatalf("error %v, want a refusal to follow the link", err)
			}
			if got := content(t, file); got != old {
				t.Errorf("the link's target changed: %q", got)
			}
			if n := entries(t, dir); len(n) != 2 {
				t.Errorf("directory holds %v, want f and link only", n)
			}
		})
	}
}

func TestReplace(t *testing.T) {
	dir, file, _ := setup(t)
	r, err := CreateReplace(file, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("half"))
	if got := content(t, file); got != old {
		t.Fatalf("the path changed before Commit: %q", got)
	}
	r.Abort()
	if got := content(t, file); got != old {
		t.Fatalf("Abort changed the path: %q", got)
	}
	if n := entries(t, dir); len(n) != 2 {
		t.Fatalf("Abort left %v", n)
	}

	r, err = CreateReplace(file, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("whole\n"))
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := content(t, file); got != "whole\n" {
		t.Fatalf("after Commit: %q", got)
	}
	fi, _ := os.Stat(file)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the old file's 0640", fi.Mode().Perm())
	}
	if n := entries(t, dir); len(n) != 2 {
		t.Errorf("Commit left %v", n)
	}

	if err := WriteFile(file, []byte("private\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("private file mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestReplaceDevice: a device is written in place, never renamed over.
func TestReplaceDevice(t *testing.T) {
	before, err := os.Stat("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check("/dev/null", true); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile("/dev/null", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat("/dev/null")
	if err != nil || !os.SameFile(before, after) || after.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null was replaced: %v %v", after, err)
	}
}

func TestFIFOWithoutReader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenStream(p, false)
	if err == nil || !strings.Contains(err.Error(), "is a FIFO with no reader") {
		t.Fatalf("error %v, want the FIFO's missing reader named", err)
	}
}

func TestCheck(t *testing.T) {
	dir, file, _ := setup(t)
	tests := []struct {
		name, path string
		want       string // "" for no error
	}{
		{"existing file", file, ""},
		{"new file", filepath.Join(dir, "new"), ""},
		{"missing directory", filepath.Join(dir, "none", "x"), "no such file or directory"},
		{"a directory", dir, "is a directory: name a file"},
		{"parent is a file", filepath.Join(file, "x"), "not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.path, true)
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v, want %q", err, tc.want)
			}
			if got := content(t, file); got != old {
				t.Fatal("Check changed a file")
			}
		})
	}
	if n := entries(t, dir); len(n) != 2 {
		t.Errorf("Check created files: %v", n)
	}
}

func TestSame(t *testing.T) {
	dir, file, link := setup(t)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	dirLink := filepath.Join(dir, "dirlink")
	os.Symlink(sub, dirLink)
	hard := filepath.Join(dir, "hard")
	if err := os.Link(file, hard); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	rel, _ := filepath.Rel(wd, file)
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"identical", file, file, true},
		{"dot-dot", file, sub + "/../f", true},
		{"relative and absolute", rel, file, true},
		{"through a symlinked directory, not existing yet", filepath.Join(sub, "n"), filepath.Join(dirLink, "n"), true},
		{"hard link", file, hard, true},
		{"symlink to it", file, link, true},
		{"different", file, filepath.Join(dir, "g"), false},
		{"empty", "", file, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Same(tc.a, tc.b); got != tc.want {
				t.Errorf("Same(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}
