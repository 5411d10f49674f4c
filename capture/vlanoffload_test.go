package capture

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// TestLoadCaptureFallsBackUnbound: when the device-bound load that reads
// VLAN tags from the driver is refused (here: bound to lo, which has no
// XDP metadata), the capture program still loads, unbound, and the user
// is told what is lost.
func TestLoadCaptureFallsBackUnbound(t *testing.T) {
	bpftest.Require(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo in this network namespace")
	}
	var notices []string
	cfg := Config{Notice: func(m string) { notices = append(notices, m) }}
	raw, err := filter.CompileContext(context.Background(), "udp", 128)
	if err != nil {
		t.Fatal(err)
	}
	lc := loader.CaptureConfig{Filter: raw, Snaplen: 128, VLANMetaIfindex: lo.Index}
	if c, err := loader.LoadCapture(lc); err == nil {
		c.Close()
		t.Fatal("a capture program bound to lo loaded: the fallback is not exercised")
	}
	c, err := cfg.loadCapture(lc)
	if err != nil {
		t.Fatalf("loadCapture: %v", err)
	}
	defer c.Close()
	if c.VLANMeta || len(notices) != 1 || !strings.Contains(notices[0], "VLAN tags held in metadata are not seen") {
		t.Fatalf("bound %v, notices %q: want unbound, and one notice", c.VLANMeta, notices)
	}
}

// TestSkbIngress: --mode auto takes received packets at TC ingress where
// it would attach generic XDP, and nowhere else: never for an explicit
// mode, never on a device whose XDP features are unknown (a kernel before
// the netdev family, where auto may still get native XDP).
func TestSkbIngress(t *testing.T) {
	native := netdev.Features{XDP: netdev.XDPActBasic}
	tests := []struct {
		name  string
		mode  loader.Mode
		veth  bool
		feat  netdev.Features
		known bool
		want  bool
	}{
		{"auto on veth", loader.ModeAuto, true, native, true, true},
		{"default mode on veth", "", true, native, true, true},
		{"auto on a NIC with native XDP", loader.ModeAuto, false, native, true, false},
		{"auto on a NIC without native XDP", loader.ModeAuto, false, netdev.Features{}, true, true},
		{"auto, features unknown", loader.ModeAuto, false, netdev.Features{}, false, false},
		{"generic asked on veth", loader.ModeGeneric, true, native, true, false},
		{"native asked on a NIC without it", loader.ModeNative, false, netdev.Features{}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skbIngress(tt.mode, tt.veth, tt.feat, tt.known); got != tt.want {
				t.Fatalf("skbIngress(%q, veth %v, %+v, known %v) = %v, want %v", tt.mode, tt.veth, tt.feat, tt.known, got, tt.want)
			}
		})
	}
}

// A failed TC ingress attachment says which way received packets were to
// be taken, and generic XDP as the way out only where TC was chosen for
// skbs.
func TestIngressAttachError(t *testing.T) {
	cause := errors.New("attach to v0's TC ingress: this kernel has no tcx")
	for _, tc := range []struct {
		at          ingressAt
		want, never string
	}{
		{ingressSkb, "--mode generic", "beside"},
		{ingressBeside, "beside the XDP program already attached", "--mode generic"},
	} {
		msg := tc.at.attachError("v0", cause).Error()
		if !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.never) || !strings.Contains(msg, cause.Error()) {
			t.Errorf("%d: %q: want %q and the cause, not %q", tc.at, msg, tc.want, tc.never)
		}
	}
}
