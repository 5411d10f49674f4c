package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"

	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/testbed"
)

// onTerminal runs the binary with stdout and stderr on an 80x24 pty and
// returns the screen's lines and the exit status.
func onTerminal(t *testing.T, args ...string) ([]string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatalf("start on a pty: %v", err)
	}
	defer ptmx.Close()
	raw, rerr := io.ReadAll(ptmx)
	werr := cmd.Wait()
	if rerr != nil && !errors.Is(rerr, syscall.EIO) {
		t.Fatalf("read the pty: %v", rerr)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	} else if werr != nil {
		t.Fatal(werr)
	}
	text := strings.TrimSuffix(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n")
	return strings.Split(text, "\n"), code
}

// TestHelpOnTerminal: every command's --help fits an 80-column terminal,
// and scan's shows its flags in the groups, in order, as --allow CIDR.
func TestHelpOnTerminal(t *testing.T) {
	requireRoot(t) // the binary is built by TestMain as root
	for _, args := range [][]string{{"--help"}, {"scan", "--help"}, {"capture", "--help"}, {"monitor", "--help"},
		{"testbed", "--help"}, {"testbed", "up", "--help"}, {"bench", "--help"}, {"bench", "scan", "--help"},
		{"bench", "capture", "--help"}, {"bench", "xdp-toggle", "--help"}, {"version", "--help"}, {"help", "scan"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			lines, code := onTerminal(t, args...)
			if code != 0 {
				t.Fatalf("exit status %d:\n%s", code, strings.Join(lines, "\n"))
			}
			for i, l := range lines {
				if n := len([]rune(l)); n > 80 {
					t.Errorf("line %d is %d columns: %q", i+1, n, l)
				}
			}
			if args[0] != "scan" {
				return
			}
			var groups []string
			for _, l := range lines {
				if strings.HasSuffix(l, ":") && !strings.HasPrefix(l, " ") && !strings.Contains(l, " ") ||
					l == "Ports and probes:" || l == "Rate and timing:" {
					groups = append(groups, strings.TrimSuffix(l, ":"))
				}
			}
			want := []string{"Targets", "Ports and probes", "Rate and timing", "Output", "Paths", "Advanced"}
			if !slices.Equal(groups, want) {
				t.Errorf("groups %q, want %q", groups, want)
			}
			help := strings.Join(lines, "\n")
			for _, s := range []string{
				"  --allow CIDR              lift the built-in blocklist for these CIDRs only",
				"  -p, --ports PORTS ", "  --rate, --max-rate PPS ", "  -i, -e, --interface, --adapter IFACE",
				"  -oX FILE ", "  --wait SECONDS ", "  -sS, -Pn, -n ",
			} {
				if !strings.Contains(help, s) {
					t.Errorf("no %q in the help", s)
				}
			}
		})
	}
}

// TestUsageErrorsOnTerminal: a usage error is one line (two rows at most
// on an 80-column terminal) on stderr, exit status 2, nothing on stdout.
func TestUsageErrorsOnTerminal(t *testing.T) {
	requireRoot(t)
	for _, args := range [][]string{{"scan", "--opne"}, {"scan", "--banners"}, {"scan", "-sV"}, {"scan", "-T4"},
		{"scan", "--wait", "soon"}, {"scan", "-x"}, {"scna"}, {"bench"}, {"testbed"}, {},
		{"capture", "--snaplenn", "1"}, {"scan", "198.18.0.1", "-p80", "-sS", "-sT"}, {"scan", "--script", "vuln"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptmx.Close()
			if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 80, Rows: 24}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, args...)
			var stdout bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, tty
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()
			raw, _ := io.ReadAll(ptmx) // EIO once the command has exited
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want status 2", err)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			text := strings.TrimSuffix(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n")
			if strings.Contains(text, "\n") || !strings.HasPrefix(text, "xdpscan: ") {
				t.Errorf("stderr %q: want one line starting xdpscan: ", text)
			}
			if rows := (len([]rune(text)) + 79) / 80; rows > 2 {
				t.Errorf("%d rows on an 80-column terminal: %q", rows, text)
			}
			if !strings.Contains(text, "--help") && !strings.Contains(text, "pick one") {
				t.Errorf("%q does not say where to look", text)
			}
		})
	}
}

// TestMakeInstall: make install into a DESTDIR puts the binary (with the
// README's file capabilities: a non-root user can scan), the man pages and
// the bash, zsh and fish completions in place; the version is git's.
func TestMakeInstall(t *testing.T) {
	requireRoot(t)
	dest := t.TempDir()
	// uid 65534 must reach the installed binary.
	for d := dest; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/usr").CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bin := filepath.Join(dest, "usr/bin/xdpscan")
	caps, err := exec.Command("getcap", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(caps))
	if len(got) != 2 || !sameCaps(got[1], "cap_bpf,cap_net_admin,cap_net_raw=ep") {
		t.Errorf("getcap: %q, want cap_bpf,cap_net_admin,cap_net_raw=ep", caps)
	}
	describe, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(string(ver), "\n", 2)[0]; !strings.HasPrefix(first, "xdpscan "+strings.TrimSpace(string(describe))+" (commit ") {
		t.Errorf("--version: %q, want git describe's %s", first, describe)
	}
	if !strings.Contains(string(ver), "\ngo      go1.") || !strings.Contains(string(ver), "\nkernel  ") {
		t.Errorf("--version lacks Go or the kernel: %q", ver)
	}
	// As nobody, with no capability of its own: the file's make every path run.
	asNobody, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version as nobody: %v\n%s", err, asNobody)
	}
	for _, line := range []string{"\nscan            yes\n", "\ncapture         yes\n", "\nmonitor         yes\n"} {
		if !strings.Contains(string(asNobody), line) {
			t.Errorf("as nobody, no %q in\n%s", strings.TrimSpace(line), asNobody)
		}
	}
	for _, page := range []string{"xdpscan.1", "xdpscan-scan.1", "xdpscan-capture.1", "xdpscan-monitor.1", "xdpscan-testbed-up.1",
		"xdpscan-bench-scan.1", "xdpscan-bench-xdp-toggle.1", "xdpscan-version.1"} {
		path := filepath.Join(dest, "usr/share/man/man1", page)
		cmd := exec.Command("man", "--warnings", "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		text, err := cmd.Output()
		// "cannot adjust line" is typography (a long default such as
		// bench scan's --tools list cannot be justified), not a fault.
		warnings := regexp.MustCompile(`(?m)^troff: .*cannot adjust line\n`).ReplaceAllString(stderr.String(), "")
		if err != nil || warnings != "" || !bytes.Contains(text, []byte("NAME")) {
			t.Errorf("man %s: %v\n%s", page, err, warnings)
		}
		if page == "xdpscan-scan.1" && !bytes.Contains(text, []byte("--allow")) {
			t.Errorf("man %s does not list --allow", page)
		}
	}
	// Bash completes flags, their values and subcommands by asking the
	// installed binary.
	script := filepath.Join(dest, "usr/share/bash-completion/completions/xdpscan")
	for line, want := range map[string]string{
		"xdpscan scan --max-r": "--max-rate --max-retries",
		"xdpscan scan --mode ": "auto native generic",
		"xdpscan bench ":       "capture flood scan xdp-pass xdp-toggle",
	} {
		prog := `source /usr/share/bash-completion/bash_completion; source "$1"; read -ra COMP_WORDS <<< "$2"
			[[ $2 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
			__start_xdpscan 2>/dev/null; echo "${COMPREPLY[*]}"`
		cmd := exec.Command("bash", "-c", prog, "bash", script, line)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		got, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("bash completes %q to %q (%v), want %q", line, strings.TrimSpace(string(got)), err, want)
		}
	}
	for _, f := range []string{"usr/share/zsh/site-functions/_xdpscan", "usr/share/fish/vendor_completions.d/xdpscan.fish"} {
		b, err := os.ReadFile(filepath.Join(dest, f))
		if err != nil || !bytes.Contains(b, []byte("__complete")) {
			t.Errorf("%s: %v, want a script asking xdpscan __complete", f, err)
		}
	}
}

// sameCaps compares getcap's capability lists whatever their order.
func sameCaps(a, b string) bool {
	split := func(s string) []string {
		l, flags, _ := strings.Cut(s, "=")
		caps := strings.Split(l, ",")
		slices.Sort(caps)
		return append(caps, flags)
	}
	return slices.Equal(split(a), split(b))
}

// TestScanSeveralOutputs: one scan with -oL, -oX, -oG and -oD (and -oJ,
// -oN when the output package has them) writes the same results to each
// file; --open lists only the open ports and still counts the closed.
func TestScanSeveralOutputs(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	const prefix = "198.18.0.0/26"
	open, closed := portTruth(tb.Config, prefix, 22, 9000)
	dir := t.TempDir()
	files := map[string]string{"oL": "r.txt", "oX": "r.xml", "oG": "r.gnmap", "oD": "r.ndjson"}
	for fl, format := range map[string]string{"oJ": "json", "oN": "normal"} {
		if slices.Contains(output.Formats, format) {
			files[fl] = "r." + format
		}
	}
	scanArgs := func(extra ...string) []string {
		return append([]string{"netns", "exec", tb.ScanNS(), binary, "scan", prefix, "-p22,9000", "--allow", "198.18.0.0/15",
			"--max-rate", "5000", "--wait", "1", "--status", "none", "-n", "-Pn", "-sS"}, extra...)
	}
	var args []string
	for fl, name := range files {
		args = append(args, "-"+fl, filepath.Join(dir, name))
	}
	if out, err := exec.Command("ip", scanArgs(args...)...).CombinedOutput(); err != nil {
		t.Fatalf("scan: %v\n%s", err, out)
	}
	want := map[string]bool{}
	for p := range open {
		want[p.addr.String()+" "+strconv.Itoa(int(p.port))+" open"] = true
	}
	for p := range closed {
		want[p.addr.String()+" "+strconv.Itoa(int(p.port))+" closed"] = true
	}
	checkSet := func(name string, got map[string]bool) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d results, want %d", name, len(got), len(want))
		}
		for k := range want {
			if !got[k] {
				t.Errorf("%s lacks %s", name, k)
				break
			}
		}
	}
	checkSet("-oD", readNDJSONSet(t, filepath.Join(dir, files["oD"])))
	checkSet("-oL", readListSet(t, filepath.Join(dir, files["oL"])))
	xml, err := os.ReadFile(filepath.Join(dir, files["oX"]))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xmllint", "--noout", filepath.Join(dir, files["oX"])).CombinedOutput(); err != nil {
		t.Errorf("xmllint -oX: %v\n%s", err, out)
	}
	if n := len(regexp.MustCompile(`portid="(22|9000)"`).FindAll(xml, -1)); n != len(want) {
		t.Errorf("-oX: %d ports, want %d", n, len(want))
	}
	gnmap, err := os.ReadFile(filepath.Join(dir, files["oG"]))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(regexp.MustCompile(`\b(22|9000)/(open|closed)/tcp/`).FindAll(gnmap, -1)); n != len(want) {
		t.Errorf("-oG: %d ports, want %d", n, len(want))
	}
	if f, ok := files["oJ"]; ok {
		var arr []map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if err := json.Unmarshal(b, &arr); err != nil {
			t.Errorf("-oJ: %v", err)
		}
	}

	// --open: only the open ports listed, the closed still counted.
	stats := filepath.Join(dir, "open.stats.json")
	if out, err := exec.Command("ip", scanArgs("--open", "-oL", filepath.Join(dir, "open.txt"), "--stats-json", stats)...).CombinedOutput(); err != nil {
		t.Fatalf("scan --open: %v\n%s", err, out)
	}
	got := readListSet(t, filepath.Join(dir, "open.txt"))
	if len(got) != len(open) {
		t.Errorf("--open listed %d results, want the %d open ports", len(got), len(open))
	}
	for k := range got {
		if !strings.HasSuffix(k, " open") {
			t.Errorf("--open listed %s", k)
		}
	}
	var st scan.Stats
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Open != uint64(len(open)) || st.Closed != uint64(len(closed)) {
		t.Errorf("--open stats: %d open, %d closed, want %d and %d", st.Open, st.Closed, len(open), len(closed))
	}
}

// readNDJSONSet reads NDJSON results as "ADDR PORT STATE".
func readNDJSONSet(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r ndjsonResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		set[r.IP+" "+strconv.Itoa(int(r.Port))+" "+r.State] = true
	}
	return set
}

// readListSet reads masscan -oL lines ("open tcp 22 ADDR TIME") as
// "ADDR PORT STATE".
func readListSet(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("%s: line %q is not a list line", path, l)
		}
		if _, err := netip.ParseAddr(f[3]); err != nil {
			t.Fatalf("%s: line %q: %v", path, l, err)
		}
		set[f[3]+" "+f[2]+" "+f[0]] = true
	}
	return set
}
