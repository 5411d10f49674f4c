package main

import (
	"fmt"
	flag "github.com/spf13/pflag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/capture"
	"github.com/xdpscan/xdpscan/loader"
)

// rotationOpts are tcpdump's -C, -G, -W and -z for capture -w.
type rotationOpts struct {
	size      string
	every     int
	files     int
	post      string
	sizeBytes int64
}

// addRotationFlags registers -C, -G, -W and -z (tcpdump's names).
func addRotationFlags(fs *flag.FlagSet, o *rotationOpts) {
	fs.StringVar(&o.size, "C", "", "rotate -w by size, as tcpdump: before a packet is written, a file larger than this\n"+
		"many million bytes (1,000,000) is closed and the next opened: FILE, FILE1, FILE2, ... (k, m, g: KiB, MiB, GiB).\n"+
		"Each file is complete (its own header, pcapng statistics at its end) and appears under its name when closed\n"+
		"(until then it is .NAME.xdpscan-*); unlike tcpdump, a file is never written over: where a name is taken,\n"+
		"the new file is NAME.1 (or .2, ...), except in a -W ring, which reuses its own names")
	fs.IntVar(&o.every, "G", 0, "rotate -w every this many seconds of the packets' time, as tcpdump: FILE is a strftime(3)\n"+
		"pattern, formatted at each period's start (e.g. -w 'cap-%Y%m%d-%H%M%S.pcapng')")
	fs.IntVar(&o.files, "W", 0, "with -C: a ring of this many files, FILE0 to FILE(N-1), reused in turn; with -G alone:\n"+
		"stop once this many files are written (tcpdump's meaning)")
	fs.StringVar(&o.post, "z", "", "run `CMD FILE` for each file a rotation closes, once it is complete (as tcpdump: found\n"+
		"on PATH, no shell, lowest priority; not for the last file). It runs with no capability and no_new_privs,\n"+
		"as the user the capture goes on as (-Z USER's IDs)")
	for name, mv := range map[string]string{"C": "MB", "G": "SECONDS", "W": "N", "z": "CMD"} {
		_ = fs.SetAnnotation(name, annGroup, []string{"Output"})
		_ = fs.SetAnnotation(name, annMetavar, []string{mv})
	}
}

func (o *rotationOpts) on() bool { return o.size != "" || o.every != 0 }

// parseFileSize is -C's value in bytes: tcpdump's million-byte unit, or
// KiB, MiB, GiB with a k, m or g suffix.
func parseFileSize(arg string) (int64, error) {
	s, unit := arg, int64(1_000_000)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		unit, s = 1<<10, s[:len(s)-1]
	case "m":
		unit, s = 1<<20, s[:len(s)-1]
	case "g":
		unit, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/unit {
		return 0, fmt.Errorf("-C %s: a whole number of million bytes (1 or more), or with k, m or g", arg)
	}
	return n * unit, nil
}

// check validates the rotation flags before anything is set up.
func (o *rotationOpts) check(out string, countOnly bool) error {
	if o.size != "" {
		n, err := parseFileSize(o.size)
		if err != nil {
			return usageError("capture: %v", err)
		}
		o.sizeBytes = n
	}
	switch {
	case o.every < 0:
		return usageError("capture: -G %d: seconds, 1 or more", o.every)
	case o.files < 0:
		return usageError("capture: -W %d: a number of files, 1 or more", o.files)
	case o.files > 0 && !o.on():
		return usageError("capture: -W %d needs -C or -G: it counts their files", o.files)
	case o.post != "" && !o.on():
		return usageError("capture: -z %s needs -C or -G: it runs when they close a file", o.post)
	case !o.on():
		return nil
	case countOnly:
		return usageError("capture: -C and -G rotate -w files; --count-only writes none")
	case out == "" || out == "-":
		return usageError("capture: -C and -G rotate files: name one with -w FILE (not stdout)")
	}
	if o.post != "" {
		if _, err := exec.LookPath(o.post); err != nil {
			return usageError("capture: -z %s: %v (tcpdump runs it by name, without a shell: give a program)", o.post, err)
		}
	}
	name := out
	if o.every > 0 {
		var err error
		if name, err = capture.Strftime(out, time.Now()); err != nil {
			return usageError("capture: %v", err)
		}
	}
	// Files are only ever created beside their names and renamed there:
	// the directory is what must be writable.
	dir := filepath.Dir(name)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageError("capture: -w %s: directory %s does not exist", out, dir)
	}
	if err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return usageError("capture: -w %s: directory %s: %v", out, dir, err)
	}
	return nil
}

// chownPath is what -Z hands to its user: nothing when rotating (the
// files are created after the switch, by the user).
func (o *rotationOpts) chownPath(out string) string {
	if o.on() {
		return ""
	}
	return out
}

// openAfter runs ready (the setup's end and the privilege drop), then
// opens the first file: every file of a rotation is created by the user
// the capture goes on as, as with tcpdump -Z.
func (o *rotationOpts) openAfter(ready func() error, file capture.FileOptions, progress *capture.Progress, dst **capture.Rotation) func() error {
	return func() error {
		if err := ready(); err != nil {
			return err
		}
		counters := func() (uint64, uint64, bool) {
			if file.RxMode != loader.RxXDP {
				return 0, 0, false // libpcap's figures are for the whole capture only
			}
			c := progress.Counters()
			return c.Packets, c.RingLost, true
		}
		r, err := capture.NewRotation(capture.RotateOptions{File: file, SizeBytes: o.sizeBytes,
			Every: time.Duration(o.every) * time.Second, Files: o.files, PostRotate: o.post, Counters: counters, Log: os.Stderr})
		if err != nil {
			return fmt.Errorf("%w (rotated files are created after setup, as uid %d with no capability: the directory must be writable by it)", err, os.Geteuid())
		}
		*dst = r
		return nil
	}
}

// report says where the rotation put the capture.
func (o *rotationOpts) report(r *capture.Rotation, st capture.Stats) {
	if r == nil {
		return
	}
	files := r.Files()
	kept := slices.Compact(slices.Sorted(slices.Values(files)))
	switch {
	case len(files) == 0:
	case len(kept) < len(files): // a -W ring
		fmt.Fprintf(os.Stderr, "xdpscan: %d files written, the ring keeps %d: %s\n", len(files), len(kept), strings.Join(kept, " "))
	case len(files) == 1:
		fmt.Fprintf(os.Stderr, "xdpscan: 1 file: %s\n", files[0])
	default:
		fmt.Fprintf(os.Stderr, "xdpscan: %d files: %s ... %s\n", len(files), files[0], files[len(files)-1])
	}
	if st.NotWrittenFileLimit > 0 {
		fmt.Fprintf(os.Stderr, "xdpscan: %d packets not written: -W %d files written\n", st.NotWrittenFileLimit, o.files)
	}
}
