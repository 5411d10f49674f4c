package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/testbed"
)

// dirState is every file in a directory with its bytes: what a failed run
// must leave exactly as it was.
func dirState(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			m[e.Name()+"/"] = nil
			continue
		}
		if e.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			m[e.Name()] = []byte("symlink to " + target)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

func sameState(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s was removed", name)
		case !bytes.Equal(a, b):
			t.Errorf("%s changed: %d bytes before, %d after", name, len(b), len(a))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s was created", name)
		}
	}
}

// runIn runs xdpscan in a namespace and returns its exit status and output.
func runIn(t *testing.T, ns string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, binary}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return 0, string(out)
}

// TestFailedRunsLeaveOutputsUntouched: a run that fails at any step of its
// setup (bad input, a filter typo, an unknown interface, an attach the
// kernel refuses) leaves the files it was told to write byte for byte as
// they were, and creates none.
func TestFailedRunsLeaveOutputsUntouched(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	precious := make([]byte, 12803) // the size of the capture issue 23 saw destroyed
	rand.Read(precious)
	for _, name := range []string{"out.ndjson", "keep.pcapng", "stats.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), precious, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, pcap, stats := filepath.Join(dir, "out.ndjson"), filepath.Join(dir, "keep.pcapng"), filepath.Join(dir, "stats.json")
	scan := func(args ...string) []string {
		return append([]string{"scan", "--allow", "198.18.0.0/15", "-o", out, "--stats-json", stats, "--status", "none"}, args...)
	}
	capture := func(args ...string) []string {
		return append([]string{"capture", "-w", pcap, "--stats-json", stats, "--duration", "2s"}, args...)
	}
	tests := []struct {
		name string
		ns   string
		args []string
		code int
		want string
	}{
		{"scan: bad target", tb.ScanNS(), scan("198.18.0.0/33", "-p", "80"), 2, `bad CIDR "198.18.0.0/33"`},
		{"scan: unknown interface", tb.ScanNS(), scan("198.18.0.0/24", "-p", "80", "-i", "eth9"), 2, "interface eth9: no such interface"},
		{"scan: native mode the driver lacks", tb.ScanNS(), scan("198.18.0.0/24", "-p", "80", "--mode", "native", "--source-ip", testbed.ScanIP.String(), "-i", "lo", "--router-mac", "02:00:00:00:00:01"), 1, "native mode: the driver does not support it"},
		{"scan: -o and --stats-json one file", tb.ScanNS(), scan("198.18.0.0/24", "-p", "80", "--stats-json", dir+"/sub/../out.ndjson"), 2, "are the same file"},
		{"capture: filter typo", tb.TargetNS(), capture("-i", testbed.TargetIf, "tcp prot 80"), 2, "prot"}, // bad input: exit 2
		{"capture: unknown interface", tb.TargetNS(), capture("-i", "eth9", "tcp"), 2, "interface eth9: no such interface"},
		{"capture: native mode the driver lacks", tb.TargetNS(), capture("-i", "lo", "--mode", "native", "tcp"), 1, "native mode: the driver does not support it"},
		{"capture: -w and --stats-json one file", tb.TargetNS(), capture("-i", testbed.TargetIf, "--stats-json", dir+"//./keep.pcapng"), 2, "are the same file"},
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dirState(t, dir)
			code, output := runIn(t, tc.ns, tc.args...)
			if code != tc.code || !strings.Contains(output, tc.want) || strings.Contains(output, "panic") {
				t.Errorf("exit %d, want %d with %q; output:\n%s", code, tc.code, tc.want, output)
			}
			sameState(t, before, dirState(t, dir))
		})
	}
}

// TestAppendOutput: --append-output adds to what is there, and a CSV's
// header is written once.
func TestAppendOutput(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	run := func(prefix string, extra ...string) {
		t.Helper()
		args := append([]string{"scan", prefix, "-p", scanPortsFlag, "--allow", "198.18.0.0/15", "--rate", "20000", "--wait", "1s",
			"--status", "none", "--format", "csv", "-o", out}, extra...)
		if code, output := runIn(t, tb.ScanNS(), args...); code != 0 {
			t.Fatalf("scan %s: exit %d\n%s", prefix, code, output)
		}
	}
	run("198.18.0.0/25")
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	run("198.18.1.0/25", "--append-output")
	all, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(all, first) || len(all) <= len(first) {
		t.Fatalf("--append-output did not append: %d bytes before, %d after", len(first), len(all))
	}
	lines := strings.Split(strings.TrimSpace(string(all)), "\n")
	var results []ndjsonResult
	headers := 0
	for _, l := range lines {
		if l == "ip,port,proto,state,reason,from,ttl,ts" {
			headers++
			continue
		}
		f := strings.Split(l, ",")
		if len(f) != 8 {
			t.Fatalf("CSV line %q", l)
		}
		var port uint16
		for _, c := range f[1] {
			port = port*10 + uint16(c-'0')
		}
		results = append(results, ndjsonResult{IP: f[0], Port: port, Proto: f[2], State: f[3], TTL: 64, TS: f[7]})
	}
	if headers != 1 {
		t.Errorf("%d CSV headers, want 1", headers)
	}
	open1, closed1 := truth(tb.Config, "198.18.0.0/25")
	open2, closed2 := truth(tb.Config, "198.18.1.0/25")
	for p := range open2 {
		open1[p] = true
	}
	for p := range closed2 {
		closed1[p] = true
	}
	checkAgainstTruth(t, results, open1, closed1)
}

// TestSymlinkAtOutputNotFollowed: a symbolic link planted where an output
// goes is refused, and the file it points to is untouched.
func TestSymlinkAtOutputNotFollowed(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("not yours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "planted")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ns   string
		args []string
	}{
		{"scan -o", tb.ScanNS(), []string{"scan", "198.18.0.0/28", "-p", "80", "--allow", "198.18.0.0/15", "-o", link}},
		{"scan --stats-json", tb.ScanNS(), []string{"scan", "198.18.0.0/28", "-p", "80", "--allow", "198.18.0.0/15", "-o", filepath.Join(dir, "r.ndjson"), "--stats-json", link}},
		{"capture -w", tb.TargetNS(), []string{"capture", "-i", testbed.TargetIf, "-w", link, "--duration", "1s"}},
		{"capture --stats-json", tb.TargetNS(), []string{"capture", "-i", testbed.TargetIf, "--count-only", "--stats-json", link, "--duration", "1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dirState(t, dir)
			code, output := runIn(t, tc.ns, tc.args...)
			want := link + " is a symbolic link (to " + victim + "): not following it"
			if code != 2 || !strings.Contains(output, want) {
				t.Errorf("exit %d, want 2 with %q; output:\n%s", code, want, output)
			}
			sameState(t, before, dirState(t, dir))
		})
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range dirState(t, dir) {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(names, []string{"planted", "victim"}) {
		t.Errorf("directory holds %v, want only planted and victim", names)
	}
}
