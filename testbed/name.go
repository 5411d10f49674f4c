package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MaxNameLen bounds a testbed name. The name goes into namespace names
// (xdpscan-NAME-scan, a file under /run/netns), into state file names and
// onto the serve process's command line; 32 leaves every one of them short.
const MaxNameLen = 32

// ValidName checks a testbed name before it reaches a path or a command:
// lower-case letters, digits and '-', not starting with '-', at most
// MaxNameLen. A slash once let `testbed down --name x/../../../f` delete
// any *.json as root, and a newline split `ip netns list`'s lines.
func ValidName(name string) error {
	if name == "" {
		return errors.New("testbed name is empty: use lower-case letters, digits and '-'")
	}
	for i, r := range []byte(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0:
		default:
			return fmt.Errorf("testbed name %q: byte %d (%q) is not allowed; use lower-case letters, digits and '-' (not first)", name, i+1, r)
		}
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("testbed name %q is %d bytes long: at most %d", name, len(name), MaxNameLen)
	}
	return nil
}

// statePath is StatePath for a name already checked, and refuses a path
// that would leave StateDir all the same (a second guard: the one place
// the name meets the file system).
func statePath(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	p := StatePath(name)
	if filepath.Dir(p) != filepath.Clean(StateDir) {
		return "", fmt.Errorf("testbed name %q: its state file %s would lie outside %s", name, p, StateDir)
	}
	return p, nil
}

// HasState says whether `testbed up` left a state file for name.
func HasState(name string) bool {
	p, err := statePath(name)
	if err != nil {
		return false
	}
	_, err = os.Lstat(p)
	return err == nil
}

// RemoveState deletes name's state file; a missing one is not an error.
func RemoveState(name string) error {
	p, err := statePath(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove testbed state: %w", err)
	}
	return nil
}
