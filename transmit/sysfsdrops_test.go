package transmit

import (
	"net"
	"strings"
	"testing"
)

// The sysfs count is used only where /sys shows this namespace's
// interface: the ifindex and address must both be the link's.
func TestOpenSysfsDropped(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatalf("lo: %v", err)
	}
	for _, tc := range []struct {
		name    string
		iface   string
		ifindex int
		mac     net.HardwareAddr
		wantErr string
	}{
		{"this namespace's lo", "lo", lo.Index, lo.HardwareAddr, ""},
		{"another ifindex", "lo", lo.Index + 1000, lo.HardwareAddr, "another namespace's lo"},
		{"another address", "lo", lo.Index, net.HardwareAddr{2, 0, 0, 0, 0, 1}, "another namespace's lo"},
		{"no such interface", "xdpscan-none0", 7, lo.HardwareAddr, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := openSysfsDropped(tc.iface, tc.ifindex, tc.mac)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			a, err := d.Sum()
			if err != nil {
				t.Fatal(err)
			}
			if b, err := d.Sum(); err != nil || b < a {
				t.Fatalf("second read %d, %v: want >= %d", b, err, a)
			}
		})
	}
}

// A driver without refused-frame counters (lo has no ethtool
// statistics) is told apart: the transmitter then counts, not resends.
func TestOpenXmitDropsNeedsTheDriversCounters(t *testing.T) {
	if _, err := openXmitDrops("lo", vethXmitErrors); err == nil {
		t.Fatal("openXmitDrops(lo): want an error, lo counts no refused XDP frames")
	}
}
