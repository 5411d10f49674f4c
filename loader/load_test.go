package loader

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/capstest"
)

// refusedLog is a verifier log as long as a real refusal's, ending with
// the reason the verifier gives a loader without CAP_PERFMON.
func refusedLog(n int) []string {
	log := make([]string, 0, n)
	for i := 0; i < n-2; i++ {
		log = append(log, fmt.Sprintf("%d: (bf) r%d = r1", i, i%10))
	}
	return append(log, "R8 pointer comparison prohibited", "processed 2000 insns (limit 1000000)")
}

func TestVerifierErrorIsSummarised(t *testing.T) {
	tests := []struct {
		name       string
		caps       []int
		full       bool
		wantAdvice string
		wantLines  int
	}{
		{"without CAP_PERFMON: xdpscan's bug", []int{capstest.BPF, capstest.NetAdmin}, false,
			"Without CAP_PERFMON the verifier holds programs to stricter pointer rules", 1 + verifierTail + 2},
		{"with CAP_PERFMON: the kernel's age", []int{capstest.BPF, capstest.NetAdmin, capstest.Perfmon}, false,
			"xdpscan needs Linux 5.18 or later", 1 + verifierTail + 2},
		{"--verbose: the whole log", []int{capstest.BPF, capstest.NetAdmin}, true,
			"Without CAP_PERFMON", 1 + 683 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func(v bool) { VerifierLogFull = v }(VerifierLogFull)
			VerifierLogFull = tc.full
			var err error
			capstest.WithEffective(t, tc.caps, func() {
				err = loadError("scan program", &ebpf.VerifierError{Cause: unix.EACCES, Log: refusedLog(683)})
			})
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != tc.wantLines {
				t.Errorf("%d lines, want %d:\n%s", len(lines), tc.wantLines, err)
			}
			if !strings.HasPrefix(lines[0], "load scan program: the kernel's verifier refused it (permission denied)") ||
				strings.Contains(err.Error(), "too old?") {
				t.Errorf("first line %q", lines[0])
			}
			if !strings.Contains(err.Error(), "\tR8 pointer comparison prohibited\n") {
				t.Errorf("the reason is not shown:\n%s", err)
			}
			if !strings.Contains(err.Error(), tc.wantAdvice) {
				t.Errorf("advice %q missing:\n%s", tc.wantAdvice, err)
			}
		})
	}
}

// TestRealRefusalIsSummarised sends a program every kernel refuses (it
// returns a register never written) through loadError.
func TestRealRefusalIsSummarised(t *testing.T) {
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Reg(asm.R0, asm.R2), asm.Return()}})
	if err == nil {
		t.Fatal("the verifier took a program that reads an unwritten register")
	}
	msg := loadError("test program", err).Error()
	if n := strings.Count(msg, "\n"); n > verifierTail+2 || !strings.Contains(msg, "R2 !read_ok") {
		t.Errorf("%d lines, want at most %d ending with the reason (R2 !read_ok):\n%s", n+1, verifierTail+3, msg)
	}
}

// TestMissingFeatureNamesTheFloor: what cilium/ebpf finds missing from an
// old kernel is told as the floor it is below (internal/kfloor).
func TestMissingFeatureNamesTheFloor(t *testing.T) {
	missing := fmt.Errorf("map create: %w", ebpf.ErrNotSupported)
	msg := loadError("scan program", missing).Error()
	for _, want := range []string{"load scan program: this kernel lacks a feature xdpscan uses",
		"xdpscan needs Linux 5.18 or later (this is ", ebpf.ErrNotSupported.Error()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

// A TC attach error names its side of the interface and says what to do
// there: a sent-packet capture without tcx can drop -Q out (the callers of
// an ingress attach add their own way out).
func TestTCAttachErrorsNameTheirSide(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hook    EgressHook
		ingress bool
		err     error
		want    []string
	}{
		{"ingress without tcx", HookTCX, true, unix.EINVAL, []string{"attach to v0's TC ingress", "--egress-hook clsact"}},
		{"egress without tcx", HookTCX, false, unix.EINVAL, []string{"attach to v0's TC egress", "-Q in only"}},
		{"ingress, clsact filter left", HookClsact, true, unix.EEXIST, []string{"tc filter show dev v0 ingress", "tc filter del dev v0 ingress pref"}},
		{"egress, not permitted", HookTCX, false, unix.EPERM, []string{"attach to v0's TC egress (tcx)", "CAP_NET_ADMIN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := egressError("v0", tc.hook, tc.ingress, tc.err).Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q: no %q", msg, w)
				}
			}
			if other := tcSide(!tc.ingress); strings.Contains(msg, "TC "+other) || strings.Contains(msg, "dev v0 "+other) {
				t.Errorf("%q names the %s side", msg, other)
			}
			if tc.ingress && strings.Contains(msg, "-Q in") {
				t.Errorf("%q: -Q in is no way out for received packets", msg)
			}
		})
	}
}
