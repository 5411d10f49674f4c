package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/internal/kfloor"
	"github.com/xdpscan/xdpscan/internal/privs"
)

// VerifierLogFull puts the verifier's whole log in load errors instead of
// its last lines: set by --verbose, or XDPSCAN_VERIFIER_LOG=1 in the
// environment. The log of a refused program runs to hundreds of lines, of
// which the last few say why.
var VerifierLogFull = os.Getenv("XDPSCAN_VERIFIER_LOG") == "1"

// verifierTail is how many of the log's last lines a load error shows.
const verifierTail = 4

// loadError adds the capability hint to a load failure, and a summary of
// the verifier's log when the verifier refused the program.
func loadError(what string, err error) error {
	// The verifier also answers EACCES: check for its log first.
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return verifierError(what, ve)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("load %s: not permitted: loading an XDP program needs CAP_BPF and CAP_NET_ADMIN "+
			"(run as root, or `setcap cap_bpf,cap_net_admin,cap_net_raw+ep` on the binary): %w", what, err)
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		// cilium/ebpf's probes found a map type, program type or helper
		// missing: a kernel below the floors.
		return fmt.Errorf("load %s: this kernel lacks a feature xdpscan uses: xdpscan needs Linux %s or later (this is %s): %w",
			what, kfloor.Floor(kfloor.Programs...), kfloor.Release(), err)
	}
	return fmt.Errorf("load %s: %w", what, err)
}

// verifierError says why the verifier refused a program in a few lines:
// the cause it gave (the log's last lines) and what to do about it.
func verifierError(what string, ve *ebpf.VerifierError) error {
	log := ve.Log
	if n := len(log); n > 0 && strings.HasPrefix(log[n-1], "processed ") {
		log = log[:n-1] // the instruction count, not the reason
	}
	var b strings.Builder
	fmt.Fprintf(&b, "load %s: the kernel's verifier refused it (%v)", what, ve.Cause)
	if VerifierLogFull {
		b.WriteString(":\n\t" + strings.Join(ve.Log, "\n\t"))
	} else {
		b.WriteString("; its last lines:\n\t" + strings.Join(log[max(0, len(log)-verifierTail):], "\n\t"))
	}
	b.WriteString("\n" + verifierAdvice(log))
	if !VerifierLogFull {
		fmt.Fprintf(&b, "\n(the whole %d-line log: --verbose, or XDPSCAN_VERIFIER_LOG=1 in the environment)", len(ve.Log))
	}
	return errors.New(b.String())
}

// strictRules are what the verifier says when it holds a loader without
// CAP_PERFMON to its stricter rules (allow_ptr_leaks off): no comparing or
// subtracting pointers other than the packet bounds checks, no pointer
// stored where a scalar goes.
var strictRules = []string{"pointer comparison prohibited", "pointer -= pointer prohibited", "pointer arithmetic",
	"leaks addr", "prohibited for !root"}

// verifierAdvice is what to do about a refusal: a strictness refusal
// without CAP_PERFMON is xdpscan's bug and root works around it; anything
// else points at the kernel's age or at xdpscan.
func verifierAdvice(log []string) string {
	text := strings.Join(log, "\n")
	perfmon := true
	if t, err := privs.Current(); err == nil {
		perfmon = t.Eff.Has(privs.CapPerfmon) || t.Eff.Has(privs.CapSysAdmin)
	}
	if !perfmon {
		for _, s := range strictRules {
			if strings.Contains(text, s) {
				return "Without CAP_PERFMON the verifier holds programs to stricter pointer rules, and this one breaks them: " +
					"a bug in xdpscan, please report it with the whole log. Until it is fixed: run as root, or add cap_perfmon to setcap's list."
			}
		}
	}
	return fmt.Sprintf("xdpscan needs Linux %s or later (this is %s); on such a kernel this is a bug in xdpscan: "+
		"please report it with the whole log.", kfloor.Floor(kfloor.Programs...), kfloor.Release())
}

// prepare lifts RLIMIT_MEMLOCK on kernels that still charge BPF memory to it
// (before 5.11); newer kernels use memory cgroups and this does nothing.
func prepare() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	return nil
}

func setVar(spec *ebpf.CollectionSpec, name string, value any) error {
	v, ok := spec.Variables[name]
	if !ok {
		return fmt.Errorf("program has no variable %q (stale bpf2go output? run `make generate`)", name)
	}
	if err := v.Set(value); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}
