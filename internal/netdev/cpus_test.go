package netdev

import (
	"slices"
	"testing"

	"github.com/xdpscan/xdpscan/internal/sysfstest"
)

// The receiving CPUs of a device with interrupts are their CPUs and its
// queues' RPS CPUs, not every online CPU.
func TestReceivingCPUsFromInterruptsAndRPS(t *testing.T) {
	sysfstest.Use(t, &SysRoot, sysfstest.Root(t, map[string]string{
		"sys/devices/system/cpu/online":         "0-7",
		"sys/class/net/e0/device/msi_irqs/40":   "msix",
		"sys/class/net/e0/device/msi_irqs/41":   "msix",
		"proc/irq/40/effective_affinity_list":   "2",
		"proc/irq/41/effective_affinity_list":   "5",
		"sys/class/net/e0/queues/rx-0/rps_cpus": "00000000,00000040",
	}))
	cpus, why, err := ReceivingCPUs("e0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cpus, []int{2, 5, 6}) {
		t.Fatalf("receiving CPUs %v (%s), want [2 5 6]", cpus, why)
	}
}

// A virtual device (veth: no interrupts of its own) receives on every
// online CPU, the sender's; threaded NAPI on any.
func TestReceivingCPUsOfVirtualAndThreaded(t *testing.T) {
	for _, tc := range []struct {
		name, threaded string
		wantWhy        string
	}{
		{"veth", "0", "no interrupts of its own (virtual device): any online CPU"},
		{"threaded NAPI", "1", "threaded NAPI: any online CPU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sysfstest.Use(t, &SysRoot, sysfstest.Root(t, map[string]string{
				"sys/devices/system/cpu/online": "0-2,5",
				"sys/class/net/v0/threaded":     tc.threaded,
			}))
			cpus, why, err := ReceivingCPUs("v0")
			if err != nil || !slices.Equal(cpus, []int{0, 1, 2, 5}) || why != tc.wantWhy {
				t.Fatalf("ReceivingCPUs = %v, %q, %v; want [0 1 2 5], %q", cpus, why, err, tc.wantWhy)
			}
		})
	}
}
