package privs

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// User is the account -Z/--user switches to.
type User struct {
	Name     string
	UID, GID int
	Groups   []int
}

// LookupUser resolves a user name or numeric UID, with its primary and
// supplementary groups, as initgroups(3) would.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("no such user %q (see /etc/passwd)", name)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q is not a number", name, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q is not a number", name, u.Gid)
	}
	out := &User{Name: u.Username, UID: uid, GID: gid, Groups: []int{gid}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				out.Groups = append(out.Groups, g)
			}
		}
	}
	return out, nil
}

// RestrictAs is Restrict for a process started as root that goes on as
// u (-Z): it drops the bounding set and everything but keep and what the
// switch needs (CAP_SETUID, CAP_SETGID, CAP_CHOWN) on every thread, hands
// paths (output files created as root; those not there yet are skipped)
// to u as tcpdump -Z does, sets the groups, GID and UID of every thread to
// u's, and checks every thread holds nothing more than keep (nothing, since
// leaving UID 0 without keep-caps clears the permitted set:
// capabilities(7)). Go's syscall.Setgroups, Setgid and Setuid go through
// the C library in a cgo binary, which applies them to every thread.
func RestrictAs(u *User, paths []string, keep Set) (droppedBounding bool, err error) {
	switching := Of(CapSetUID, CapSetGID, CapChown)
	dropped, err := restrict(keep|switching, keep)
	if err != nil {
		return false, err
	}
	if err := switchUser(u, paths); err != nil {
		return false, err
	}
	if _, err := restrict(keep, keep); err != nil {
		return false, err
	}
	return dropped, nil
}

func switchUser(u *User, paths []string) error {
	for _, p := range paths {
		if p == "" || p == "-" {
			continue
		}
		if err := os.Lchown(p, u.UID, u.GID); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("-Z %s: hand %s to the user: %w", u.Name, p, err)
		}
	}
	if err := syscall.Setgroups(u.Groups); err != nil {
		return fmt.Errorf("-Z %s: setgroups: %w", u.Name, err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return fmt.Errorf("-Z %s: setgid %d: %w", u.Name, u.GID, err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return fmt.Errorf("-Z %s: setuid %d: %w", u.Name, u.UID, err)
	}
	return nil
}
