package testbed

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// serveChildEnv makes the test binary play a serve process (the real one
// is `xdpscan testbed serve`, which needs a testbed): "ready" answers as
// ServeUntilSignal does once the target answers and then waits for
// SIGTERM; any other value is printed as the reason it failed.
const serveChildEnv = "XDPSCAN_TESTBED_SERVE_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(serveChildEnv); v != "" {
		fmt.Println(v)
		if v != readyLine {
			os.Exit(1)
		}
		os.Stdout.Close()
		time.Sleep(time.Minute) // SIGTERM's default action ends it
		os.Exit(3)
	}
	goleak.VerifyTestMain(m)
}

// TestServeSupervision: up's serve process is started, found ready,
// recorded, and stopped by down; one that fails is reaped with its reason.
func TestServeSupervision(t *testing.T) {
	StateDir = t.TempDir()
	t.Cleanup(func() { StateDir = "/run/xdpscan" })
	child := func(t *testing.T, mode, name string) []string {
		t.Setenv(serveChildEnv, mode)
		// The name and "serve" on the command line are what StopServe
		// checks before it signals a recorded PID.
		return []string{os.Args[0], "-test.run=^$", "serve", name}
	}

	t.Run("ready, recorded, stopped", func(t *testing.T) {
		name := fmt.Sprintf("lz%d", os.Getpid())
		pid, err := SpawnServe(child(t, readyLine, name))
		if err != nil {
			t.Fatal(err)
		}
		if !ProcessAlive(pid) {
			t.Fatalf("serve pid %d is not running after it said ready", pid)
		}
		if err := WriteState(UpState{Config: Config{Name: name}, ServePID: pid}); err != nil {
			t.Fatal(err)
		}
		st, err := ReadState(name)
		if err != nil || st.ServePID != pid || st.Config.Name != name {
			t.Fatalf("state read back %+v, %v; want pid %d for %s", st, err, pid, name)
		}
		StopServe(name)
		// It is still this process's child (Release does not reparent):
		// once ended by the SIGTERM it is a zombie until this process
		// exits; `testbed up` exits, and init reaps it.
		deadline := time.Now().Add(5 * time.Second)
		for ProcessAlive(pid) && !isZombie(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("serve pid %d still running after StopServe", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("failure is reported and reaped", func(t *testing.T) {
		_, err := SpawnServe(child(t, "bind 198.18.0.1:22: address in use", "lzfail"))
		if err == nil || !strings.Contains(err.Error(), "testbed serve failed: bind 198.18.0.1:22: address in use") {
			t.Fatalf("error %v, want the serve process's reason", err)
		}
	})
	t.Run("a PID that is not a serve of the name is left alone", func(t *testing.T) {
		// This test process: its command line names neither serve nor
		// the name recorded.
		if err := WriteState(UpState{Config: Config{Name: "lzother"}, ServePID: os.Getpid()}); err != nil {
			t.Fatal(err)
		}
		StopServe("lzother") // a SIGTERM here would end the test binary
	})
	t.Run("no state", func(t *testing.T) {
		if _, err := ReadState("lznone"); err == nil || !strings.Contains(err.Error(), `testbed "lznone" is not up`) {
			t.Fatalf("error %v, want one saying the testbed is not up", err)
		}
		StopServe("lznone") // nothing recorded: nothing to do
	})
}

// isZombie reports whether pid has exited and awaits its parent's wait.
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
