package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/testbed"
)

// hostTerms is `host A or host B or ...`, the filter libpcap's optimizer
// takes longest on: 1,000 terms (20 KB) compile for about a minute.
func hostTerms(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "host 198.18.%d.%d", i/250, 1+i%250)
	}
	return b.String()
}

// TestCaptureHugeFilterStopsOnSignal: a capture whose filter takes libpcap
// a minute to compile stops within a second of SIGINT or SIGTERM, having
// attached nothing and created no file.
func TestCaptureHugeFilterStopsOnSignal(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	expr := hostTerms(1000)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.pcapng")
			cmd := exec.Command("ip", "netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf,
				"--duration", "5m", "-w", out, expr)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond) // well into the compile
			sent := time.Now()
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("capture still running 10 s after %v:\n%s", sig, stderr.String())
			}
			took := time.Since(sent)
			if took > time.Second {
				t.Errorf("capture exited %v after %v: want within a second", took, sig)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "filter compilation abandoned: context canceled") ||
				strings.Contains(stderr.String(), "panic") {
				t.Errorf("exit %v, want status 1 and the compile abandoned:\n%s", err, stderr.String())
			}
			var m loader.Mode
			if err := testbed.Do(tb.TargetNS(), func() (err error) { m, err = loader.AttachedMode(testbed.TargetIf); return err }); err != nil {
				t.Fatal(err)
			}
			if m != "" {
				t.Errorf("XDP still attached (%s) after the capture exited", m)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("-w file: %v, want none created", err)
			}
			t.Logf("exited %v after %v", took, sig)
		})
	}
}

// TestCaptureHugeFilterInput: each filter past a limit is refused at once
// with its error and exit status 2, touching no file; one of 64 KiB works
// and writes a pcapng that tshark and gopacket read.
func TestCaptureHugeFilterInput(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	// An argument holds at most 128 KiB (MAX_ARG_STRLEN): a 1 MiB
	// expression comes as words, which capture joins as tcpdump does.
	var mib []string
	for range 16 {
		mib = append(mib, strings.Repeat("tcp or ", 64<<10/7)+"tcp")
	}
	mibLen := len(strings.Join(mib, " "))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an expression of 1 MiB", mib, fmt.Sprintf("xdpscan: capture: filter of %d bytes: at most 65536 bytes (64 KiB) are accepted, as libpcap's compile time grows steeply with length; capture with a shorter filter\n", mibLen)},
		{"one byte over 64 KiB", []string{"tcp" + strings.Repeat(" ", 64<<10-2)}, "xdpscan: capture: filter of 65537 bytes: at most 65536 bytes (64 KiB) are accepted, as libpcap's compile time grows steeply with length; capture with a shorter filter\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.pcapng")
			start := time.Now()
			cmd := exec.Command("ip", append([]string{"netns", "exec", tb.TargetNS(), binary, "capture", "-i", testbed.TargetIf, "--duration", "30s", "-w", out}, tc.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || stderr.String() != tc.want {
				t.Fatalf("exit %v, stderr %q; want status 2 and %q", err, stderr.String(), tc.want)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("refused after %v: want at once", took)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("-w file: %v, want none created", err)
			}
		})
	}

	t.Run("a filter of 64 KiB with -w", func(t *testing.T) {
		// Just at the limit, longer than a pcapng option holds (65,534
		// bytes): the file leaves it out, with a comment, and stays valid.
		expr := "udp" + strings.Repeat(" ", 64<<10-3)
		dir := t.TempDir()
		file := filepath.Join(dir, "big.pcapng")
		st := runCaptureWrapped(t, tb, nil, dir, "-w", file, expr)
		if st.Written != 500 {
			t.Fatalf("wrote %d packets, want the 500 UDP", st.Written)
		}
		if n := tsharkCount(t, file); n != 500 {
			t.Fatalf("tshark reads %d packets, want 500", n)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		intf, err := r.Interface(0)
		if err != nil {
			t.Fatal(err)
		}
		if intf.Filter != "" || intf.Comment != "capture filter of 65536 bytes not recorded: a pcapng option holds at most 65534" {
			t.Fatalf("interface filter of %d bytes, comment %q", len(intf.Filter), intf.Comment)
		}
	})
}
