package bench

import (
	"context"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpscan/xdpscan/loader"
)

// HoldPassProgram attaches an XDP program that only returns XDP_PASS to
// iface and keeps it there until ctx is done. It is the floor of any XDP
// program on that link: on veth the kernel gives every AF_PACKET-sent skb
// the 256 bytes of headroom XDP requires by copying it, whatever the
// program does, and this measures that cost alone. ready is called once
// attached.
func HoldPassProgram(ctx context.Context, iface string, mode loader.Mode, ready func(attached loader.Mode)) error {
	prog, err := PassProgram()
	if err != nil {
		return err
	}
	defer prog.Close()
	att, err := loader.Attach(prog, iface, mode)
	if err != nil {
		return err
	}
	defer att.Close()
	ready(att.Mode)
	<-ctx.Done()
	return nil
}

// PassProgram loads an XDP program that only returns XDP_PASS.
func PassProgram() (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdp_pass", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load XDP_PASS program: %w", err)
	}
	return prog, nil
}
