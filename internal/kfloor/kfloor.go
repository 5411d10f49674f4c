// Package kfloor is xdpscan's kernel floors as data: each kernel feature
// the programs use, the first Linux version that has it, the capabilities
// it needs and what in xdpscan uses it. `xdpscan version` reports the
// running kernel against the table, load errors name the floor they hit,
// and tests skip only when the running kernel lacks the feature they use
// (internal/bpftest). Comments elsewhere that name a floor say what this
// table says.
package kfloor

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/privs"
)

// Version is a kernel version, major.minor.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	return v.Major < w.Major || v.Major == w.Major && v.Minor < w.Minor
}

// Feature is one kernel feature xdpscan uses.
type Feature struct {
	Name   string    // what the kernel provides
	Since  Version   // the first Linux version that has it
	Needs  privs.Set // the capabilities using it takes
	UsedBy string    // what in xdpscan needs it
}

var (
	loadXDP = privs.Of(privs.CapBPF, privs.CapNetAdmin)

	// GlobalFunctions: BPF functions the verifier checks once, on their
	// own, against their BTF prototype.
	GlobalFunctions = Feature{"global BPF functions", Version{5, 6}, privs.Of(privs.CapBPF),
		"parse_packet, the capture filter (bpf/include/parse.h, bpf/capture.c)"}
	// RingBuffer: BPF_MAP_TYPE_RINGBUF.
	RingBuffer = Feature{"BPF ring buffer", Version{5, 8}, privs.Of(privs.CapBPF),
		"every program's events (ringbuf/)"}
	// XDPLink: XDP attached through a bpf_link, which detaches by itself
	// when the process exits.
	XDPLink = Feature{"bpf_link XDP attachment", Version{5, 9}, privs.Of(privs.CapNetAdmin),
		"attaching every program, detached when xdpscan exits (loader.Attach)"}
	// CPUMapPrograms: an XDP program in a cpumap entry, which may redirect.
	CPUMapPrograms = Feature{"programs in cpumap entries", Version{5, 9}, loadXDP,
		"scan --tx-relay-cpu (xdpscan_send_relay)"}
	// XDPLoadBytes: bpf_xdp_load_bytes and bpf_xdp_get_buff_len, with
	// which the programs read headers at variable offsets and stay
	// loadable without CAP_PERFMON.
	XDPLoadBytes = Feature{"bpf_xdp_load_bytes and bpf_xdp_get_buff_len", Version{5, 18}, loadXDP,
		"scan, capture, monitor, the testbed's responder (bpf/include/parse.h)"}
	// LiveFrames: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
	LiveFrames = Feature{"BPF_PROG_RUN live frames", Version{5, 18}, loadXDP,
		"scan --tx xdp, bench --gen xdp"}
	// LongJumps: BPF_JMP32|BPF_JA with a 32-bit offset ("gotol").
	LongJumps = Feature{"32-bit jumps (gotol)", Version{6, 4}, loadXDP,
		"capture filters long enough that a jump spans more than 32,767 instructions (filter.LongJumps)"}
)

// ClsactBPF: a cls_bpf filter in direct-action mode on a clsact
// qdisc's egress hook; left attached if the process is killed (the
// next capture's setup removes what it finds of its own: see loader).
var ClsactBPF = Feature{"clsact egress cls_bpf, direct action", Version{4, 5}, loadXDP,
	"capture -Q out|inout below Linux 6.6 (loader.AttachEgress)"}

// TCX: TC programs attached through a bpf_link (tcx), which detaches by
// itself when the process exits and chains with other programs.
var TCX = Feature{"tcx (TC bpf_link attachment)", Version{6, 6}, loadXDP,
	"capture -Q out|inout (loader.AttachEgress; clsact below it)"}

// All is the table, oldest floor first.
var All = []Feature{ClsactBPF, GlobalFunctions, RingBuffer, XDPLink, CPUMapPrograms, XDPLoadBytes, LiveFrames, LongJumps, TCX}

// Programs are the features every program load needs: the floor of scan,
// capture, monitor and the testbed.
var Programs = []Feature{GlobalFunctions, RingBuffer, XDPLink, XDPLoadBytes}

// Floor is the newest Since of fs.
func Floor(fs ...Feature) Version {
	var v Version
	for _, f := range fs {
		if v.Less(f.Since) {
			v = f.Since
		}
	}
	return v
}

// ParseRelease reads the version at the start of a kernel release string,
// as uname -r prints it ("6.18.0-1-amd64", "5.15.0").
func ParseRelease(release string) (Version, error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("kernel release %q: want MAJOR.MINOR...", release)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return Version{}, fmt.Errorf("kernel release %q: major version: %w", release, err)
	}
	minor := parts[1] // "18-rc3", "19+": the digits only
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	m, err := strconv.Atoi(minor)
	if err != nil {
		return Version{}, fmt.Errorf("kernel release %q: minor version: %w", release, err)
	}
	return Version{major, m}, nil
}

// Release is the running kernel's release string (uname -r).
func Release() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(uts.Release[:])
}

// Running is the running kernel's version.
func Running() (Version, error) { return ParseRelease(Release()) }

// Missing is the features of fs the running kernel is too old for, or an
// error when its version cannot be read.
func Missing(fs ...Feature) ([]Feature, error) {
	v, err := Running()
	if err != nil {
		return nil, err
	}
	var out []Feature
	for _, f := range fs {
		if v.Less(f.Since) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Explain says which floor a failure of f may be: "needs Linux 5.18 or
// later for BPF_PROG_RUN live frames (this is 5.15.0)". A distribution
// kernel may have the feature backported, so this is a hint to print with
// the kernel's own error, never a reason to refuse before trying.
func (f Feature) Explain() string {
	return fmt.Sprintf("needs Linux %s or later for %s (this is %s)", f.Since, f.Name, Release())
}
