package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// loadError adds the capability hint to a load failure, and the verifier's
// log tail when the verifier refused the program.
func loadError(what string, err error) error {
	// The verifier also answers EACCES: check for its log first.
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("load %s: the kernel's verifier refused it (kernel too old?): %+v", what, ve)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("load %s: not permitted: xdpscan needs CAP_BPF and CAP_NET_ADMIN "+
			"(run as root, or `setcap cap_bpf,cap_net_admin,cap_net_raw+ep` on the binary): %w", what, err)
	}
	return fmt.Errorf("load %s: %w", what, err)
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
