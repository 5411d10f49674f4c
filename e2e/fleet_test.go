package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// The fleet scans 198.18.12.0/23 × 5 ports: 2560 probes, ~853 a shard.
const (
	fleetPrefix = "198.18.12.0/23"
	fleetShards = 3
	fleetSeed   = "4242"
)

func fleetArgs(tb *testbed.Testbed, i int, out string, rate string) []string {
	return []string{"netns", "exec", tb.ScannerNS(i), binary, "scan", fleetPrefix, "-p", scanPortsFlag,
		"--allow", "198.18.0.0/15", "--rate", rate, "--wait", "1s", "--seed", fleetSeed,
		"--shard", fmt.Sprint(i), "--shards", fmt.Sprint(fleetShards), "-o", out, "--stats-json", out + ".stats.json", "--status", "none"}
}

// TestFleetShardsMerge: a fleet of scanner "hosts" (testbed --scanners 3:
// a namespace each, each with its own link to the target) runs the three
// shards of one scan at once, same seed; `xdpscan merge` of their outputs
// is exactly the ground truth. Then again with one shard killed (SIGKILL)
// midway and resumed from its checkpoint: the merge is still exact.
func TestFleetShardsMerge(t *testing.T) {
	tb := upTestbed(t, testbed.Config{Scanners: fleetShards})
	open, closed := truth(tb.Config, fleetPrefix)

	t.Run("all at once", func(t *testing.T) {
		dir := t.TempDir()
		parts := runShards(t, tb, dir, -1)
		for i, p := range parts {
			var st scan.Stats
			b, err := os.ReadFile(p + ".stats.json")
			if err == nil {
				err = json.Unmarshal(b, &st)
			}
			if err != nil {
				t.Fatalf("shard %d stats: %v", i, err)
			}
			if st.Shard != uint64(i) || st.Shards != fleetShards || fmt.Sprint(st.Seed) != fleetSeed ||
				st.Ports != scanPortsFlag || st.Targets.Summary != fleetPrefix {
				t.Errorf("shard %d --stats-json part %+v: want shard %d of %d, seed %s, ports %s, targets %s",
					i, st.Part, i, fleetShards, fleetSeed, scanPortsFlag, fleetPrefix)
			}
		}
		merged := filepath.Join(dir, "merged.ndjson")
		if out, err := exec.Command(binary, append([]string{"merge", "-o", merged}, parts...)...).CombinedOutput(); err != nil {
			t.Fatalf("merge: %v\n%s", err, out)
		}
		checkAgainstTruth(t, readNDJSON(t, merged), open, closed)

		// As the cluster's log pipeline gives them: all parts in one
		// stream, the pods' stderr lines between them, on stdin.
		var stream []byte
		for _, p := range parts {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			stream = append(append(stream, "xdpscan: a pod's summary on stderr\n"...), b...)
		}
		cmd := exec.Command(binary, "merge", "-")
		cmd.Stdin = strings.NewReader(string(stream))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("merge -: %v", err)
		}
		fromStdin := filepath.Join(dir, "stdin.ndjson")
		os.WriteFile(fromStdin, out, 0o644)
		checkAgainstTruth(t, readNDJSON(t, fromStdin), open, closed)

		// One part missing: named, exit status 1.
		cmd = exec.Command(binary, "merge", "-o", filepath.Join(dir, "partial.ndjson"), parts[0], parts[2])
		msg, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "shard(s) 1 of 0-2 missing") {
			t.Errorf("merge without shard 1: %v\n%s", err, msg)
		}
	})

	t.Run("one shard killed and resumed", func(t *testing.T) {
		dir := t.TempDir()
		parts := runShards(t, tb, dir, 1)
		merged := filepath.Join(dir, "merged.ndjson")
		if out, err := exec.Command(binary, append([]string{"merge", "-o", merged}, parts...)...).CombinedOutput(); err != nil {
			t.Fatalf("merge: %v\n%s", err, out)
		}
		checkAgainstTruth(t, readNDJSON(t, merged), open, closed)
	})
}

// runShards runs the fleet's shards at once, one per scanner namespace,
// and returns their outputs. Shard kill (if >= 0) runs slowly, is killed
// once it has saved a checkpoint past the start, and is resumed with
// --resume alone.
func runShards(t *testing.T, tb *testbed.Testbed, dir string, kill int) []string {
	t.Helper()
	parts := make([]string, fleetShards)
	errs := make([]error, fleetShards)
	outs := make([][]byte, fleetShards)
	var wg sync.WaitGroup
	for i := range fleetShards {
		parts[i] = filepath.Join(dir, fmt.Sprintf("shard-%d.ndjson", i))
		rate := "20000"
		if i == kill {
			rate = "300" // ~853 probes: ~2.8 s, checkpoints every 2 s
		}
		cmd := exec.Command("ip", fleetArgs(tb, i, parts[i], rate)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i != kill {
				outs[i], errs[i] = cmd.CombinedOutput()
				return
			}
			if errs[i] = cmd.Start(); errs[i] != nil {
				return
			}
			resume := parts[i] + ".resume"
			var saved struct {
				Position struct{ Pass, Next uint64 } `json:"position"`
			}
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				b, err := os.ReadFile(resume)
				if err == nil && json.Unmarshal(b, &saved) == nil && saved.Position.Next > 0 {
					break
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			if saved.Position.Next == 0 {
				errs[i] = fmt.Errorf("no checkpoint past the start before the kill")
				return
			}
			t.Logf("shard %d killed after its checkpoint at position %+v", i, saved.Position)
			outs[i], errs[i] = exec.Command("ip", "netns", "exec", tb.ScannerNS(i), binary, "scan", "--resume", resume).CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range fleetShards {
		if errs[i] != nil {
			t.Fatalf("shard %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	return parts
}
