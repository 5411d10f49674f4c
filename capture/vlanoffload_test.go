package capture

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/filter"
	"github.com/xdpscan/xdpscan/internal/bpftest"
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
