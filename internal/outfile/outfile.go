// Package outfile opens the files xdpscan writes so that a run that fails
// never destroys what the user already has:
//
//   - Check, called before any setup, finds what would make a file
//     unwritable (a missing or read-only directory, a directory or a
//     symbolic link at the path) without creating or changing anything.
//   - A Stream (scan -o) is opened only once the scan has started, never
//     follows a symbolic link planted at the path (O_NOFOLLOW), and leaves an
//     existing file untouched until the first byte is written (or the run
//     ends well with nothing to write): a run that fails leaves it as it was.
//     In append mode it only ever adds.
//   - A Replace (capture -w, --stats-json, the resume file) is written to a
//     temporary file beside the path (O_CREAT|O_EXCL|O_NOFOLLOW), synced, and
//     renamed over the path only when complete: the old file stays whole
//     until the new one is.
//
// Paths that exist and are not regular files (/dev/null, a FIFO) are
// written in place: renaming over a device node would replace it.
package outfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Check reports, without creating or changing anything, why path could
// not be written: its directory is missing or not writable, or the path is
// a directory or a symbolic link (never followed). replace says the file is
// written beside and renamed (the directory must be writable even when the
// file exists).
func Check(path string, replace bool) error {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Errorf("%s is a symbolic link (to %s): not following it; remove it, or name the file itself", path, target)
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s is a directory: name a file", path)
	case err == nil && !fi.Mode().IsRegular():
		// A device or a FIFO is written in place.
		return access(path, unix.W_OK)
	case err == nil && !replace:
		return access(path, unix.W_OK)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, unwrapPath(err))
	}
	if !di.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	return nil
}

func access(path string, mode uint32) error {
	// AT_EACCESS: the effective ids, which open would use.
	if err := unix.Faccessat(unix.AT_FDCWD, path, mode, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("%s: not writable: %w", path, err)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Same says whether a and b name the same file: the same path once made
// absolute and cleaned, with symbolic links in the directories resolved,
// or (when both exist) the same inode.
func Same(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if canonical(a) == canonical(b) {
		return true
	}
	ai, errA := os.Stat(a)
	bi, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ai, bi)
}

func canonical(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	dir, base := filepath.Split(abs)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(d, base)
	}
	return abs
}

// Stream is a file written as a run goes (scan -o).
type Stream struct {
	f       *os.File
	path    string
	created bool // the open created it
	pending bool // an existing regular file not yet truncated
	wrote   bool
}

// OpenStream opens path for results. With appendTo the results are added
// at its end; otherwise an existing regular file is truncated only at the
// first Write (or at Close(true)), so a run that fails before writing
// anything leaves it untouched. A FIFO without a reader is an error, not a
// wait.
func OpenStream(path string, appendTo bool) (*Stream, error) {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	if appendTo {
		flags |= unix.O_APPEND
	}
	existed := true
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		existed = false
	}
	fd, err := unix.Open(path, flags, 0o644)
	if err != nil {
		return nil, openError(path, err)
	}
	// O_NONBLOCK only made opening a FIFO with no reader fail at once
	// (ENXIO); writes block as usual.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory: name a file", path)
	}
	return &Stream{f: f, path: path, created: !existed,
		pending: !appendTo && fi.Mode().IsRegular() && fi.Size() > 0}, nil
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		target, _ := os.Readlink(path)
		return fmt.Errorf("%s is a symbolic link (to %s): not following it; remove it, or name the file itself", path, target)
	case errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%s is a FIFO with no reader: start the reader first", path)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Write writes p, truncating an existing file first.
func (s *Stream) Write(p []byte) (int, error) {
	if s.pending {
		if err := s.f.Truncate(0); err != nil {
			return 0, fmt.Errorf("truncate %s: %w", s.path, err)
		}
		s.pending = false
	}
	s.wrote = s.wrote || len(p) > 0
	return s.f.Write(p)
}

// Sync flushes what was written to the disk (a checkpoint must never claim
// results the file may lose).
func (s *Stream) Sync() error {
	if err := s.f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EROFS) {
		return err // EINVAL: a FIFO or a device, nothing to sync
	}
	return nil
}

// File is the open file.
func (s *Stream) File() *os.File { return s.f }

// Close closes the stream. ok says the run ended well (or was interrupted
// after it started): an existing file nothing was written to is then
// emptied, since the run's output is empty. When !ok, such a file is left
// as it was, and one this stream created is removed.
func (s *Stream) Close(ok bool) error {
	var err error
	if ok && s.pending {
		err = s.f.Truncate(0)
	}
	if ok && err == nil {
		err = s.Sync() // a resume file written next counts on it
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if !ok && s.created && !s.wrote {
		os.Remove(s.path)
	}
	return err
}

// Replace is a file written whole and put in place at the end.
type Replace struct {
	f        *os.File
	tmp      string // "" when writing in place (a device, a FIFO)
	path     string
	finished bool
	synced   bool // Seal synced it
}

// CreateReplace starts writing path: a new temporary file in the same
// directory (O_EXCL|O_NOFOLLOW; mode perm less the umask, or the existing
// file's mode) that Commit renames over path. A path that exists and is not
// a regular file (/dev/null, a FIFO) is written in place.
func CreateReplace(path string, perm os.FileMode) (*Replace, error) {
	return createReplace(path, perm, true)
}

// CreatePrivate is CreateReplace with mode 0600 whatever the file had (the
// resume file: it holds the scan's targets).
func CreatePrivate(path string) (*Replace, error) {
	return createReplace(path, 0o600, false)
}

// CreateInPlace is for an output whose directory the run may no longer
// write to when it ends (capture -Z USER: the rename would be refused once
// the process is USER): it truncates and writes path itself, never through
// a symlink. Call it only once everything that can fail before the first
// packet has succeeded, as capture's Ready does, so that a failed start
// still leaves the file as it was.
func CreateInPlace(path string, perm os.FileMode) (*Replace, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
	if err != nil {
		return nil, openError(path, err)
	}
	return &Replace{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

func createReplace(path string, perm os.FileMode, keepMode bool) (*Replace, error) {
	fi, err := os.Lstat(path)
	keep := false
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return nil, openError(path, unix.ELOOP)
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("%s is a directory: name a file", path)
	case err == nil && !fi.Mode().IsRegular():
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, openError(path, err)
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, err
		}
		return &Replace{f: os.NewFile(uintptr(fd), path), path: path}, nil
	case err == nil && keepMode:
		perm, keep = fi.Mode().Perm(), true // what the user chose for the file
	}
	return newTemp(path, perm, keep)
}

// newTemp creates the temporary file beside path that Commit renames
// over it; keep applies perm exactly (the old file's mode), else the umask
// applies.
func newTemp(path string, perm os.FileMode, keep bool) (*Replace, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	for range 100 {
		var rnd [6]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "."+base+".xdpscan-"+hex.EncodeToString(rnd[:]))
		fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: cannot create a file beside it: %w", path, err)
		}
		if keep { // open applied the umask; the old file's mode is the user's choice
			if err := unix.Fchmod(fd, uint32(perm)); err != nil {
				unix.Close(fd)
				os.Remove(tmp)
				return nil, err
			}
		}
		return &Replace{f: os.NewFile(uintptr(fd), tmp), tmp: tmp, path: path}, nil
	}
	return nil, fmt.Errorf("%s: no free temporary name beside it", path)
}

// Write writes to the new file.
func (r *Replace) Write(p []byte) (int, error) { return r.f.Write(p) }

// File is the file being written (the temporary one).
func (r *Replace) File() *os.File { return r.f }

// Commit syncs the new file and renames it over the path, then syncs the
// directory so the rename itself survives a crash.
func (r *Replace) Commit() error {
	if r.finished {
		return nil
	}
	r.finished = true
	if r.tmp == "" {
		return r.f.Close()
	}
	err := r.f.Sync()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(r.tmp, r.path)
	}
	if err != nil {
		os.Remove(r.tmp)
		return fmt.Errorf("%s: %w", r.path, err)
	}
	syncDir(filepath.Dir(r.path))
	return nil
}

// Abort drops the new file: the path keeps what it had.
func (r *Replace) Abort() {
	if r.finished {
		return
	}
	r.finished = true
	r.f.Close()
	if r.tmp != "" {
		os.Remove(r.tmp)
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// WriteFile writes data to path as a Replace does: whole or not at all.
// perm 0600 makes a private file (CreatePrivate); any other keeps an
// existing file's mode.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	create := CreateReplace
	if perm == 0o600 {
		create = func(p string, _ os.FileMode) (*Replace, error) { return CreatePrivate(p) }
	}
	r, err := create(path, perm)
	if err != nil {
		return err
	}
	if _, err := r.Write(data); err != nil {
		r.Abort()
		return fmt.Errorf("%s: %w", path, err)
	}
	return r.Commit()
}
