package capture

import (
	"context"
	"fmt"
	"os"

	cbpf "golang.org/x/net/bpf"

	"github.com/xdpscan/xdpscan/filter"
)

// compileXDP compiles cfg's filter for the XDP program the way tcpdump
// compiles it for a live capture on the interface (filter.CompileLive:
// VLAN tests read the tag the kernel moves to metadata, `tcp` matches TCP
// inside a VLAN). Where libpcap cannot open the interface, as without
// CAP_NET_RAW, it falls back to the savefile code (filter.Compile) with
// the filter seeing every frame as it is, tags in place, and says so:
// frameView is then true.
func compileXDP(ctx context.Context, cfg Config) (raw []cbpf.RawInstruction, frameView bool, err error) {
	if cfg.Iface == "" {
		// A program loaded for no interface (a load check): the savefile
		// code, which needs no handle.
		raw, err = filter.CompileContext(ctx, cfg.Filter, int(cfg.Snaplen))
		return raw, true, err
	}
	raw, err = filter.CompileLive(ctx, cfg.Iface, cfg.Filter, int(cfg.Snaplen))
	if err == nil || !filter.IsLiveError(err) {
		return raw, false, err
	}
	cfg.notice(fmt.Sprintf("xdpscan: %v; the filter is compiled as for a savefile (tcpdump -r) instead: it sees VLAN tags in the frame, so `tcp` misses TCP inside a VLAN that tcpdump -i matches (grant CAP_NET_RAW for tcpdump's live semantics)", err))
	raw, err = filter.CompileContext(ctx, cfg.Filter, int(cfg.Snaplen))
	return raw, true, err
}

// notice tells the user msg: cfg.Notice, or standard error.
func (cfg Config) notice(msg string) {
	if cfg.Notice != nil {
		cfg.Notice(msg)
		return
	}
	fmt.Fprintln(os.Stderr, msg)
}
