package testbed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The target answers only while a process holds its listening sockets and
// the responder's bpf_link: `xdpscan testbed up` starts one in the
// background (`testbed serve`, which runs ServeUntilSignal) and records it
// in a state file, which `down` uses to stop it and `status` to show it.

// UpState is what `testbed up` leaves for `down` and `status`.
type UpState struct {
	Config   Config `json:"config"`
	ServePID int    `json:"serve_pid"`
}

// StateDir holds the state files, one per testbed name.
var StateDir = "/run/xdpscan"

// StatePath is where the state of testbed name is kept.
func StatePath(name string) string { return filepath.Join(StateDir, "testbed-"+name+".json") }

// WriteState records st for its testbed's name.
func WriteState(st UpState) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", StateDir, err)
	}
	path, err := statePath(st.Config.Name)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write testbed state: %w", err)
	}
	return nil
}

// ReadState reads the state `testbed up` left for name.
func ReadState(name string) (UpState, error) {
	var st UpState
	path, err := statePath(name)
	if err != nil {
		return st, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("testbed %q is not up (no %s); `xdpscan testbed up`", name, path)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read %s: %w", path, err)
	}
	if st.Config.Name != name {
		return st, fmt.Errorf("read %s: it records testbed %q, not %q", path, st.Config.Name, name)
	}
	return st, nil
}

// readyLine is what the serve process prints once the target answers;
// anything else it prints first is why it could not.
const readyLine = "ready"

// serveStartTimeout bounds how long SpawnServe waits for readyLine.
const serveStartTimeout = 10 * time.Second

// SpawnServe starts argv (the serve process: argv[0] is the executable)
// in its own session, so it outlives the caller, and waits until it says
// the target is answering. It returns the process's PID; a process that
// fails or is not ready in time is killed and reaped.
func SpawnServe(argv []string) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start testbed serve: %w", err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != readyLine {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, fmt.Errorf("testbed serve failed: %s", line)
		}
	case <-time.After(serveStartTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("testbed serve did not start within %s", serveStartTimeout)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// ServeUntilSignal is the serve process's side: it makes the existing
// testbed cfg answer, says so on out (readyLine, or the error) and closes
// out, then holds the target's sockets or XDP link until SIGTERM, SIGINT
// or SIGHUP.
func ServeUntilSignal(cfg Config, out *os.File) error {
	tb, err := Existing(cfg)
	if err == nil {
		err = tb.Serve()
	}
	if err != nil {
		fmt.Fprintln(out, err)
		return err
	}
	fmt.Fprintln(out, readyLine)
	out.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	<-sig
	// The listeners are reachable only through tb: without this, a garbage
	// collection (the UDP services allocate) finalizes and closes them.
	runtime.KeepAlive(tb)
	tb.Stop()
	return nil
}

// StopServe ends the serve process recorded for name, if it is still
// ours (its command line names serve and name: a recycled PID is left
// alone), and waits up to a second for it to exit.
func StopServe(name string) {
	st, err := ReadState(name)
	if err != nil || st.ServePID <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.ServePID))
	if err != nil || !strings.Contains(string(cmdline), "serve") || !strings.Contains(string(cmdline), name) {
		return // gone, or the PID now belongs to someone else
	}
	p, err := os.FindProcess(st.ServePID)
	if err != nil {
		return
	}
	p.Signal(syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if !ProcessAlive(st.ServePID) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProcessAlive reports whether process pid exists.
func ProcessAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// Names are the names of every xdpscan testbed on this host, from their
// namespaces.
func Names() ([]string, error) {
	nss, err := Namespaces()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ns := range nss {
		n := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(ns, "xdpscan-"), "-scan"), "-tgt")
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}
