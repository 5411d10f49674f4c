// Package e2e tests xdpscan end to end on the namespaced testbed: real
// veth, real XDP attachment, real target kernels. It needs root.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xdpscan/xdpscan/testbed"
)

// binary is the xdpscan command built once for the tests that run it.
var binary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "xdpscan-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// The unprivileged tests run the binary as uid 65534.
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binary = filepath.Join(dir, "xdpscan")
		out, err := exec.Command("go", "build", "-o", binary, "../cmd/xdpscan").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build xdpscan: %v\n%s", err, out)
			return 1
		}
	}
	busy, err := busyMode()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var hog *cpuHog
	if busy {
		// Bounded by itself, in case this process dies without stopping it.
		if hog, err = startCPUHog(time.Hour); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	start := time.Now()
	code := m.Run()
	if hog != nil { // before goleak looks: its waiter is a goroutine
		share, err := hog.stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "%s: the suite ran %.1fs with CPU %d %.0f%% busy (stress-ng)\n",
			busyEnv, time.Since(start).Seconds(), runtime.NumCPU()-1, 100*share)
	}
	if code == 0 {
		// testbed.Do and the ring consumers must not leave goroutines behind.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			return 1
		}
	}
	return code
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests create network namespaces and attach XDP: run them as root")
	}
}

var testbedSeq atomic.Int32

// upTestbed builds a testbed with a name unique to this test process and
// removes it when the test ends, pass or fail.
func upTestbed(t *testing.T, cfg testbed.Config) *testbed.Testbed {
	t.Helper()
	requireRoot(t)
	cfg.Name = fmt.Sprintf("t%d-%d", os.Getpid()%100000, testbedSeq.Add(1))
	tb, err := testbed.Up(cfg)
	if err != nil {
		t.Fatalf("testbed up: %v", err)
	}
	t.Cleanup(func() {
		if err := tb.Down(); err != nil {
			t.Errorf("testbed down: %v", err)
		}
	})
	if err := tb.Serve(); err != nil {
		t.Fatalf("testbed serve: %v", err)
	}
	return tb
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// lockedBuffer is a bytes.Buffer a test may read while a command's output
// is still being copied into it (exec copies from its own goroutine).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
