package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Usage is what one tool process cost, from wait4's rusage: the tool alone,
// not the bench.
type Usage struct {
	WallS     float64 `json:"wall_s"`
	UserS     float64 `json:"user_s"`
	SysS      float64 `json:"sys_s"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// CPUS is user + system seconds.
func (u Usage) CPUS() float64 { return u.UserS + u.SysS }

// toolCmd runs name in network namespace ns, pinned to cpu when cpu >= 0.
// `ip netns exec` and `taskset` both exec into the next program, so the
// process waited for is the tool itself and its rusage is the tool's.
func toolCmd(ctx context.Context, ns string, cpu int, name string, args ...string) *exec.Cmd {
	argv := []string{"netns", "exec", ns}
	if cpu >= 0 {
		argv = append(argv, "taskset", "-c", strconv.Itoa(cpu))
	}
	argv = append(argv, name)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second // then SIGKILL: every run is bounded
	return cmd
}

// watchPeakRSS samples the tool's VmHWM (its own peak resident set) every
// 10ms until the returned function is called after Wait, and returns the
// last reading in MB. wait4's ru_maxrss cannot be used: the child starts as
// a vfork of this process and the kernel carries the parent's peak across
// exec, so every tool would report at least the bench's own size. Readings
// count only once /proc/PID/cmdline is the tool's own (after the exec of
// ip and taskset).
func watchPeakRSS(cmd *exec.Cmd) (stop func() float64) {
	want := strings.Join(toolArgs(cmd), "\x00")
	pid := cmd.Process.Pid
	done := make(chan struct{})
	result := make(chan float64, 1)
	go func() {
		var peakKB uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, ok := readHWM(pid, want); ok {
				peakKB = max(peakKB, kb)
			}
			select {
			case <-done:
				result <- float64(peakKB) / 1024
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(done); return <-result }
}

func readHWM(pid int, wantCmdline string) (uint64, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	cl, err := os.ReadFile(dir + "/cmdline")
	if err != nil || strings.TrimRight(string(cl), "\x00") != wantCmdline {
		return 0, false
	}
	st, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}

// procResult is a finished tool process.
type procResult struct {
	Usage
	Stdout, Stderr []byte
}

// runTool runs cmd to completion and returns its usage. A non-zero exit is
// an error that carries the tool's last words.
func runTool(cmd *exec.Cmd) (procResult, error) {
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return procResult{}, fmt.Errorf("start %s: %w", cmdline(cmd), err)
	}
	return finish(cmd, start, watchPeakRSS(cmd), &stdout, &stderr)
}

// finish waits for a started tool and gathers what it cost and said.
func finish(cmd *exec.Cmd, start time.Time, peak func() float64, stdout, stderr *bytes.Buffer) (procResult, error) {
	err := cmd.Wait()
	res := procResult{Usage: usageOf(cmd.ProcessState, time.Since(start)), Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	res.PeakRSSMB = peak()
	if err != nil {
		return res, fmt.Errorf("%s: %w: %s", cmdline(cmd), err, lastLines(stderr.Bytes(), 3))
	}
	return res, nil
}

func usageOf(ps *os.ProcessState, wall time.Duration) Usage {
	u := Usage{WallS: wall.Seconds()}
	if ps == nil {
		return u
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.UserS = time.Duration(ru.Utime.Nano()).Seconds()
		u.SysS = time.Duration(ru.Stime.Nano()).Seconds()
	}
	return u
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// runningTool is a started tool process.
type runningTool struct {
	cmd  *exec.Cmd
	wait func() (procResult, error)
}

// watchStderr collects what a tool writes to stderr (pipe) into stderr
// until it closes (done), and closes readyc at the first line containing
// ready.
func watchStderr(pipe io.Reader, ready string) (stderr *bytes.Buffer, readyc, done chan struct{}) {
	stderr = new(bytes.Buffer)
	readyc, done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pipe)
		signalled := false
		for sc.Scan() {
			stderr.Write(sc.Bytes())
			stderr.WriteByte('\n')
			if !signalled && strings.Contains(sc.Text(), ready) {
				close(readyc)
				signalled = true
			}
		}
	}()
	return stderr, readyc, done
}

// startUntil starts cmd and waits until its stderr shows a line containing
// ready (the tool is live), then keeps collecting stderr in the background.
func startUntil(cmd *exec.Cmd, ready string, timeout time.Duration) (*runningTool, error) {
	var stdout bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmdline(cmd), err)
	}
	peak := watchPeakRSS(cmd)
	stderr, readyc, done := watchStderr(pipe, ready)
	wait := func() (procResult, error) {
		<-done
		return finish(cmd, start, peak, &stdout, stderr)
	}
	select {
	case <-readyc:
		return &runningTool{cmd: cmd, wait: wait}, nil
	case <-done:
		_, err := wait()
		return nil, fmt.Errorf("%s exited before it was ready: %v", toolName(cmd), err)
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		_, _ = wait()
		return nil, fmt.Errorf("%s not ready after %s (no %q on stderr)", toolName(cmd), timeout, ready)
	}
}

// busyCPU reads /proc/stat: the seconds all CPUs together spent not idle.
// The machine is otherwise quiet during a bench, so a difference over a
// window is what the flood and the capture cost, wherever the kernel
// accounted it (softirq on the sender's CPU included).
func busyCPU() (float64, error) {
	f, err := procStatCPU()
	if err != nil {
		return 0, err
	}
	var busy uint64
	for i, v := range f {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		busy += v
	}
	return float64(busy) / 100, nil // USER_HZ
}

// procStatCPU reads the all-CPUs line of /proc/stat, in USER_HZ ticks:
// user nice system idle iowait irq softirq steal guest guest_nice.
func procStatCPU() ([]uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return nil, errors.New("/proc/stat: no cpu line")
	}
	v := make([]uint64, len(f)-1)
	for i, s := range f[1:] {
		if v[i], err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, fmt.Errorf("/proc/stat cpu field %d %q: %w", i+1, s, err)
		}
	}
	return v, nil
}

// softnetDrops sums the second column of /proc/net/softnet_stat: packets
// dropped because a CPU's backlog was full (all namespaces share it).
func softnetDrops() (uint64, error) {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/net/softnet_stat: %w", err)
		}
		sum += v
	}
	return sum, nil
}

// toolArgs is the tool's argv, without the namespace and the pinning.
func toolArgs(cmd *exec.Cmd) []string {
	args := cmd.Args[4:]
	if len(args) > 3 && args[0] == "taskset" {
		args = args[3:]
	}
	return args
}

func cmdline(cmd *exec.Cmd) string { return strings.Join(toolArgs(cmd), " ") }

func toolName(cmd *exec.Cmd) string { return toolArgs(cmd)[0] }
