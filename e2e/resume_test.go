package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
)

// The resumed scans cover 198.18.8.0/23 × 5 ports (2560 probes) at 400/s:
// 6.4 s, a --status json line a second (15.6% apart), so 30% and 70% are
// reached at known moments on a busy machine too.
const (
	resumePrefix = "198.18.8.0/23"
	resumeRate   = "400"
)

// startSlowScan starts the scan and returns once its --status json lines
// say it has sent at least pct percent of its probes.
func startSlowScan(t *testing.T, tb *testbed.Testbed, dir, out string, pct float64, extra ...string) (*exec.Cmd, *stderrText) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", tb.ScanNS(), binary, "scan", resumePrefix, "-p", scanPortsFlag,
		"--allow", "198.18.0.0/15", "--rate", resumeRate, "--wait", "500ms", "--seed", "7", "-o", out, "--status", "json"}, extra...)...)
	cmd.Dir = dir
	// A pipe of our own, not StderrPipe: cmd.Wait closes StderrPipe's
	// read end when the process exits, maybe before the last lines were
	// read; this one is read to its end (EOF when the process is gone).
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the child holds the write end now: EOF when it exits
	rest := &stderrText{done: make(chan struct{})}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var st struct {
			DonePct float64 `json:"done_pct"`
		}
		if json.Unmarshal(sc.Bytes(), &st) == nil && st.DonePct >= pct {
			if st.DonePct > pct+25 {
				t.Errorf("the first status line past %.0f%% says %.1f%%: the scan ran too fast to stop where the test wants", pct, st.DonePct)
			}
			// Keep reading stderr so the scan never blocks on it.
			go func() { io.Copy(&rest.buf, stderr); stderr.Close(); close(rest.done) }()
			t.Cleanup(func() { <-rest.done })
			return cmd, rest
		}
		rest.buf.Write(sc.Bytes())
		rest.buf.WriteByte('\n')
	}
	stderr.Close()
	cmd.Wait()
	close(rest.done)
	t.Fatalf("the scan ended before %.0f%%:\n%s", pct, rest.buf.String())
	return nil, nil
}

// stderrText is a scan's stderr, read to its end in the background.
type stderrText struct {
	buf  bytes.Buffer
	done chan struct{}
}

// String is all of it: call it once the process has exited (it waits for
// the end of the pipe).
func (s *stderrText) String() string {
	<-s.done
	return s.buf.String()
}

// checkResumedOutput reads the output after the resume: every line whole,
// the truth exactly, no pair twice.
func checkResumedOutput(t *testing.T, tb *testbed.Testbed, out string) {
	t.Helper()
	open, closed := truth(tb.Config, resumePrefix)
	checkAgainstTruth(t, readNDJSON(t, out), open, closed)
}

// interruptedScan brings up a testbed, starts a slow scan of it writing
// part.ndjson in a new directory, and interrupts it (SIGINT) 30% of the
// way through; it returns the output's and the resume file's paths, what
// the scan's Wait said and its standard error, for the caller to check.
func interruptedScan(t *testing.T) (tb *testbed.Testbed, out, resume string, err error, stderr *stderrText) {
	t.Helper()
	tb = upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	out = filepath.Join(dir, "part.ndjson")
	resume = out + ".resume"
	cmd, stderr := startSlowScan(t, tb, dir, out, 30)
	cmd.Process.Signal(syscall.SIGINT)
	return tb, out, resume, cmd.Wait(), stderr
}

func TestInterruptAndResume(t *testing.T) {
	tb, out, resume, err, stderr := interruptedScan(t)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted scan: %v, want exit status 130\n%s", err, stderr.String())
	}
	if want := "continue with: xdpscan scan --resume " + resume; !strings.Contains(stderr.String(), want) {
		t.Fatalf("no %q in:\n%s", want, stderr.String())
	}
	fi, err := os.Stat(resume)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("resume file mode %v, want 0600", fi.Mode().Perm())
	}
	open, closed := truth(tb.Config, resumePrefix)
	first := readNDJSON(t, out)
	if len(first) == 0 || len(first) >= len(open)+len(closed) {
		t.Fatalf("interrupted scan found %d of %d: not a partial scan", len(first), len(open)+len(closed))
	}
	// From another directory, with nothing but the file.
	code, output := runIn(t, tb.ScanNS(), "scan", "--resume", resume)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, output)
	}
	if strings.Contains(output, "not written twice") {
		t.Errorf("an interrupt's resume position is exact, yet results were sent twice:\n%s", output)
	}
	checkResumedOutput(t, tb, out)
	if _, err := os.Stat(resume); !os.IsNotExist(err) {
		t.Errorf("the resume file of a completed scan is still there (%v)", err)
	}
}

// TestConnectInterruptAndResume: the connect scan's probes in flight at
// the interrupt run to their end, so its exact resume position loses none.
func TestConnectInterruptAndResume(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	out := filepath.Join(dir, "part.ndjson")
	cmd, stderr := startSlowScan(t, tb, dir, out, 30, "--connect", "--connect-timeout", "400ms")
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted scan exited 0:\n%s", stderr.String())
	}
	code, output := runIn(t, tb.ScanNS(), "scan", "--resume", out+".resume")
	if code != 0 || strings.Contains(output, "not written twice") {
		t.Fatalf("resume: exit %d (want 0, nothing sent twice)\n%s", code, output)
	}
	var probes []probeKey
	for _, p := range scanPorts {
		probes = append(probes, probeKey{proto: "tcp", port: p})
	}
	checkStates(t, readNDJSON(t, out), mixedTruth(tb.Config, resumePrefix, probes))
}

// TestKillAndResume: SIGKILL mid-scan; the checkpoint the scan kept lets
// `--resume FILE` alone finish it, and what the checkpoint did not cover
// is probed again but not written twice.
func TestKillAndResume(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	for _, pct := range []float64{30, 70} {
		t.Run(fmt.Sprintf("at %.0f%%", pct), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "part.ndjson")
			resume := out + ".resume"
			cmd, _ := startSlowScan(t, tb, dir, out, pct)
			// Checkpoints lag 1 s (--wait 500ms + 500 ms) and come every
			// 2 s from 1.5 s on: the first is due as 30% is reached, so
			// wait for it (at most a second) to kill past a real one.
			var saved struct {
				Position struct{ Pass, Next uint64 } `json:"position"`
			}
			for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
				b, err := os.ReadFile(resume)
				if err == nil && json.Unmarshal(b, &saved) == nil && saved.Position.Next > 0 || time.Now().After(deadline) {
					break
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			b, err := os.ReadFile(resume)
			if err != nil {
				t.Fatalf("no checkpoint after SIGKILL: %v", err)
			}
			if err := json.Unmarshal(b, &saved); err != nil {
				t.Fatal(err)
			}
			if saved.Position.Next == 0 {
				t.Errorf("checkpoint at position %+v after %.0f%%: none written while scanning", saved.Position, pct)
			}
			t.Logf("killed at %.0f%%: checkpoint at position %d of 2560", pct, saved.Position.Next)
			code, output := runIn(t, tb.ScanNS(), "scan", "--resume", resume)
			if code != 0 {
				t.Fatalf("resume: exit %d\n%s", code, output)
			}
			t.Logf("resume said:\n%s", output)
			checkResumedOutput(t, tb, out)
			if _, err := os.Stat(resume); !os.IsNotExist(err) {
				t.Errorf("the resume file of a completed scan is still there (%v)", err)
			}
		})
	}
}

// reChecksum recomputes a resume file's checksum as xdpscan does: SHA-256
// of its JSON object without "checksum", keys sorted, no spaces.
func reChecksum(t *testing.T, m map[string]any) {
	t.Helper()
	delete(m, "checksum")
	canon, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	m["checksum"] = hex.EncodeToString(sum[:])
}

// TestResumeFileChecked: a resume file is checked against the command and
// against itself; every refusal is exit status 2 with the difference named,
// and neither the output nor the resume file changes.
func TestResumeFileChecked(t *testing.T) {
	tb, out, resume, err, stderr := interruptedScan(t)
	dir := filepath.Dir(out)
	if err == nil {
		t.Fatalf("interrupted scan exited 0:\n%s", stderr.String())
	}
	orig, err := os.ReadFile(resume)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(edit func(m map[string]any), checksum bool) string {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(orig))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		if checksum {
			reChecksum(t, m)
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		p := filepath.Join(t.TempDir(), "forged.resume")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	setPos := func(field, v string) func(map[string]any) {
		return func(m map[string]any) { m["position"].(map[string]any)[field] = json.Number(v) }
	}
	const max64 = "18446744073709551615"
	other := filepath.Join(dir, "other.ndjson")
	same := "; resume with `xdpscan scan --resume " + resume + "` alone, or remove the file to start a new scan"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"other targets", []string{"--resume", resume, "198.18.8.0/24"},
			"--resume " + resume + ": this command changes the scan's targets: 198.18.8.0/24 (256 addresses) here, 198.18.8.0/23 (512 addresses) in the file" + same},
		{"other ports", []string{"--resume", resume, "-p", "22,80"},
			"this command changes the scan's ports: 22,80 here, 22,80,443,8080,9000 in the file"},
		{"other seed", []string{"--resume", resume, "--seed", "8"}, "this command changes the scan's seed: 8 here, 7 in the file"},
		{"other shards", []string{"--resume", resume, "--shards", "2"},
			"this command changes the scan's shards: --shard 0 --shards 2 here, --shard 0 --shards 1 in the file"},
		{"other retries", []string{"--resume", resume, "--retries", "1"}, "this command changes the scan's retries: --retries 1 here, --retries 0 in the file"},
		{"other output", []string{"--resume", resume, "-o", other}, "this command changes the scan's output: -o " + other + " here, -o " + out + " in the file"},
		{"other format", []string{"--resume", resume, "--format", "csv"}, "this command changes the scan's output format: --format csv here, --format ndjson in the file"},
		{"forged pass", []string{"--resume", forge(setPos("pass", "99"), true)},
			"position pass 99 is not one of this scan's: it has passes 0-0 (--retries 0); the file was forged or damaged: rerun the scan"},
		{"forged next", []string{"--resume", forge(setPos("next", max64), true)},
			"position next " + max64 + " is not one of this scan's: it has 2560 probe positions per pass (0-2559); the file was forged or damaged"},
		{"forged next, checksum kept", []string{"--resume", forge(setPos("next", max64), false)},
			"checksum mismatch"},
		{"forged shards", []string{"--resume", forge(func(m map[string]any) { m["shards"] = json.Number("2") }, true)},
			"this command changes the scan's shards: --shard 0 --shards 1 here, --shard 0 --shards 2 in the file"},
		{"unknown field", []string{"--resume", forge(func(m map[string]any) { m["key"] = "x" }, true)},
			`not a resume file xdpscan wrote: json: unknown field "key"`},
		{"a device", []string{"--resume", "/dev/zero"}, "--resume /dev/zero: not a regular file"},
		{"-o and --stats-json one file", []string{"--resume", resume, "--stats-json", out}, "-o " + out + " and --stats-json " + out + " are the same file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dirState(t, dir)
			code, output := runIn(t, tb.ScanNS(), append([]string{"scan"}, tc.args...)...)
			if code != 2 || !strings.Contains(output, tc.want) {
				t.Errorf("exit %d, want 2 with %q; output:\n%s", code, tc.want, output)
			}
			sameState(t, before, dirState(t, dir))
		})
	}
	// Every flag repeated as it was (and a rate of its own, which does not
	// change what the scan is): the scan continues, appending.
	code, output := runIn(t, tb.ScanNS(), "scan", resumePrefix, "-p", scanPortsFlag, "--allow", "198.18.0.0/15", "--rate", "20000",
		"--wait", "1s", "--seed", "7", "-o", out, "--status", "none", "--resume", resume)
	if code != 0 {
		t.Fatalf("resume with the flags repeated: exit %d\n%s", code, output)
	}
	checkResumedOutput(t, tb, out)
}
