// Package privs reads and drops Linux capabilities for xdpscan, which needs
// CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW to set up (load and attach its XDP
// programs, open AF_PACKET sockets) and none of them once set up.
//
// Linux credentials belong to threads, not processes: capset(2), the
// ambient and bounding sets and no_new_privs change only the calling
// thread. A pure Go program can use syscall.AllThreadsSyscall, but that
// returns ENOTSUP in a binary that uses cgo (xdpscan does, for libpcap).
// Restrict therefore runs the change on every thread itself, the way
// libcap's psx does: a signal handler (for an otherwise unused real-time
// signal) applies it, every thread listed in /proc/self/task is sent that
// signal with tgkill, and Restrict returns only when every thread's
// /proc/self/task/TID/status shows the new sets.
package privs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Cap is a capability number (linux/capability.h).
type Cap uint

// The capabilities xdpscan deals with.
const (
	CapChown    Cap = 0
	CapSetGID   Cap = 6
	CapSetUID   Cap = 7
	CapSetPCap  Cap = 8
	CapNetAdmin Cap = 12
	CapNetRaw   Cap = 13
	CapSysAdmin Cap = 21
	CapPerfmon  Cap = 38
	CapBPF      Cap = 39
)

var capNames = map[Cap]string{
	CapChown: "chown", 1: "dac_override", 2: "dac_read_search", 3: "fowner", 4: "fsetid", 5: "kill",
	CapSetGID: "setgid", CapSetUID: "setuid", CapSetPCap: "setpcap", 9: "linux_immutable",
	10: "net_bind_service", 11: "net_broadcast", CapNetAdmin: "net_admin", CapNetRaw: "net_raw",
	14: "ipc_lock", 15: "ipc_owner", 16: "sys_module", 17: "sys_rawio", 18: "sys_chroot", 19: "sys_ptrace",
	20: "sys_pacct", CapSysAdmin: "sys_admin", 22: "sys_boot", 23: "sys_nice", 24: "sys_resource",
	25: "sys_time", 26: "sys_tty_config", 27: "mknod", 28: "lease", 29: "audit_write", 30: "audit_control",
	31: "setfcap", 32: "mac_override", 33: "mac_admin", 34: "syslog", 35: "wake_alarm", 36: "block_suspend",
	37: "audit_read", CapPerfmon: "perfmon", CapBPF: "bpf", 40: "checkpoint_restore",
}

// String is the capability's name as the kernel and man pages spell it:
// "CAP_NET_RAW".
func (c Cap) String() string { return "CAP_" + strings.ToUpper(c.setcapName()) }

// setcapName is the name setcap(8) and setpriv(1) take: "net_raw".
func (c Cap) setcapName() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return strconv.Itoa(int(c))
}

// Set is a capability set as /proc/PID/status shows it: bit N is Cap N.
type Set uint64

// Of is the set holding caps.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

// Caps lists s in ascending order.
func (s Set) Caps() []Cap {
	var out []Cap
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// String is "CAP_BPF, CAP_NET_ADMIN", or "none".
func (s Set) String() string {
	if s == 0 {
		return "none"
	}
	var names []string
	for _, c := range s.Caps() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}

// Setcap is the set in setcap(8)'s text form, by name:
// "cap_bpf,cap_net_admin".
func (s Set) Setcap() string {
	var names []string
	for _, c := range s.Caps() {
		names = append(names, "cap_"+c.setcapName())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// Thread is one thread's credentials as /proc/PID/task/TID/status shows them.
type Thread struct {
	TID                     int
	Eff, Prm, Inh, Amb, Bnd Set
	NoNewPrivs              bool
	// UID and GID are the real, effective, saved and filesystem IDs.
	UID, GID [4]int
	// Groups are the supplementary groups as the status shows them:
	// "65534", "" for none.
	Groups string
}

// ParseStatus reads the credential lines of a /proc status file.
func ParseStatus(b []byte) (Thread, error) {
	var t Thread
	found := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var set *Set
		switch key {
		case "Pid":
			n, err := strconv.Atoi(val)
			if err != nil {
				return t, fmt.Errorf("status: Pid %q: %v", val, err)
			}
			t.TID = n
		case "CapEff":
			set = &t.Eff
		case "CapPrm":
			set = &t.Prm
		case "CapInh":
			set = &t.Inh
		case "CapAmb":
			set = &t.Amb
		case "CapBnd":
			set = &t.Bnd
		case "Groups":
			t.Groups = val
		case "NoNewPrivs":
			t.NoNewPrivs = val == "1"
		case "Uid", "Gid":
			f := strings.Fields(val)
			if len(f) != 4 {
				return t, fmt.Errorf("status: %s %q: want 4 IDs", key, val)
			}
			ids := &t.UID
			if key == "Gid" {
				ids = &t.GID
			}
			for i, s := range f {
				n, err := strconv.Atoi(s)
				if err != nil {
					return t, fmt.Errorf("status: %s %q: %v", key, val, err)
				}
				ids[i] = n
			}
		default:
			continue
		}
		found[key] = true
		if set != nil {
			v, err := strconv.ParseUint(val, 16, 64)
			if err != nil {
				return t, fmt.Errorf("status: %s %q: %v", key, val, err)
			}
			*set = Set(v)
		}
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd", "NoNewPrivs", "Uid", "Gid"} {
		if !found[k] {
			return t, fmt.Errorf("status: no %s line (Linux 4.10 or later shows them all)", k)
		}
	}
	return t, nil
}

// Current is the calling thread's credentials.
func Current() (Thread, error) {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return Thread{}, fmt.Errorf("read capabilities: %w", err)
	}
	return ParseStatus(b)
}

// Threads is every thread of process pid (0: this process), by TID.
func Threads(pid int) ([]Thread, error) {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	var out []Thread
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if os.IsNotExist(err) {
			continue // the thread has exited
		}
		if err != nil {
			return nil, fmt.Errorf("read thread %d: %w", tid, err)
		}
		t, err := ParseStatus(b)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", tid, err)
		}
		t.TID = tid
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out, nil
}
