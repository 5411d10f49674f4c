package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Seal closes a file being written beside its path, synced first when
// sync says so; it stays beside (under its temporary name) until Place
// puts it somewhere. For a rotation of capture files, whose names are
// chosen only when each file is complete.
func (r *Replace) Seal(sync bool) error {
	if r.tmp == "" {
		return fmt.Errorf("%s: written in place, nothing to seal", r.path)
	}
	if r.finished {
		return nil
	}
	r.finished = true
	var err error
	if sync {
		err = r.f.Sync()
		r.synced = err == nil
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(r.tmp)
		return fmt.Errorf("%s: %w", r.path, err)
	}
	return nil
}

// Place renames the sealed file to path (and syncs the directory when the
// file was synced: otherwise SyncFS does both at once, later). With noReplace an existing path
// is never replaced, atomically (renameat2 RENAME_NOREPLACE; link and
// unlink where the filesystem lacks it): the error is then fs.ErrExist and
// the file stays beside, for another name. Any other error removes it.
func (r *Replace) Place(path string, noReplace bool) error {
	var err error
	if noReplace {
		err = unix.Renameat2(unix.AT_FDCWD, r.tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			if err = unix.Link(r.tmp, path); err == nil {
				err = unix.Unlink(r.tmp)
			}
		}
		if errors.Is(err, unix.EEXIST) {
			return fs.ErrExist
		}
	} else {
		err = os.Rename(r.tmp, path)
	}
	if err != nil {
		os.Remove(r.tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if r.synced {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// CreateBeside starts a new file beside path (O_EXCL|O_NOFOLLOW, mode perm
// less the umask) whatever is at path now: Seal and Place put it in place.
func CreateBeside(path string, perm os.FileMode) (*Replace, error) {
	return newTemp(path, perm, false)
}

// Discard removes a sealed file that was never placed.
func (r *Replace) Discard() {
	if r.tmp != "" {
		os.Remove(r.tmp)
	}
}

// SyncFS flushes the filesystem holding dir to the disk (syncfs(2)): what
// files sealed without a sync need before their names can be trusted
// after a crash.
func SyncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Path is the path the file was created beside.
func (r *Replace) Path() string { return r.path }
