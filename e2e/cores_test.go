package e2e

import (
	"testing"

	"github.com/xdpscan/xdpscan/testbed"
)

// A scan whose replies are received on two CPUs at once (two queues per
// veth end, RPS over both CPUs, two senders on two CPUs feeding two
// queues): the in-kernel dedup table may race between the CPUs, and the
// output still holds each pair once, exactly the truth. The stats show
// the replies were seen on both CPUs, and ring loss per CPU.
func TestScanRepliesOnTwoCPUsNoDuplicate(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Queues: 2, RPS: true})
	const prefix = "198.18.4.0/22"
	open, closed := truth(tb.Config, prefix)
	results, st, err := runScan(t, tb, t.TempDir(), prefix, "-p", scanPortsFlag, "--rate", "5000", "--wait", "1500ms", "--senders", "2")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	t.Logf("stats: %d probes, %d open, %d closed, %d tx errors, %d ring lost, replies per CPU %v", st.ProbesSent, st.Open, st.Closed, st.TxErrors, st.RingLost, st.RxPerCPU)
	checkAgainstTruth(t, results, open, closed)
	busy := 0
	for _, n := range st.RxPerCPU {
		if n > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Fatalf("replies seen per CPU %v: want replies on at least 2 CPUs (else this test proves nothing)", st.RxPerCPU)
	}
	if len(st.RingLostPerCPU) != len(st.RxPerCPU) || st.Senders != 2 {
		t.Errorf("stats: ring lost per CPU %v, senders %d: want one count per CPU, 2 senders", st.RingLostPerCPU, st.Senders)
	}
	t.Logf("replies per CPU %v, kernel table duplicates %d (all refused before output)", st.RxPerCPU, st.Duplicates)
}
