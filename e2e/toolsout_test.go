package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/internal/gnmap"
	"github.com/xdpscan/xdpscan/testbed"
)

// The targets of TestOutputsExistingToolsRead: 16 answering addresses,
// four that answer ICMP admin prohibited (.200-.203) and one that answers
// nothing (.245); TCP 22 and 80 open, 81 closed; UDP 53 open (the
// testbed's DNS), 54 closed; and an echo request to each.
var toolTargets = []string{"198.18.0.0/28", "198.18.0.200/30", "198.18.0.245"} // a form nmap, masscan and xdpscan all read

const toolPorts = "22,80,81,U:53,U:54"

// TestOutputsExistingToolsRead: one scan writes nmap's XML, grepable and
// normal output, masscan's list and JSON array, and NDJSON at once, and
// each is what the tools that read it accept:
//   - xmllint --dtdvalid nmap.dtd passes;
//   - ndiff between it and a second scan with another seed reports no
//     difference (exit 0, only the two header lines it always prints);
//   - the grepable file parses with a strict reader of nmap's -oG, and
//     every host's Status and port fields equal those of nmap -sS -sU of
//     the same targets, run on the same testbed (nmap -Pn also lists .245,
//     which never answered: xdpscan lists what answered);
//   - the list equals masscan -oL --show closed of the same targets, line
//     for line after sorting (times aside); masscan does not report ICMP
//     admin prohibited, so the lines of .200-.203 (state "filtered") are
//     checked apart;
//   - jq parses the JSON array, with one record per NDJSON line.
func TestOutputsExistingToolsRead(t *testing.T) {
	for _, tool := range []string{"xmllint", "ndiff", "nmap", "masscan", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps): %v", tool, err)
		}
	}
	tb := upTestbed(t, testbed.Config{ProhibitedFrom: 200})
	dir := t.TempDir()
	scanOnce := func(seed string) map[string]string {
		files := map[string]string{}
		args := append([]string{"scan"}, toolTargets...)
		args = append(args, "-p", toolPorts, "--ping", "--allow", "198.18.0.0/15", "--rate", "2000", "--wait", "1s",
			"--seed", seed, "--status", "none", "-o", filepath.Join(dir, seed+".ndjson"))
		files["ndjson"] = filepath.Join(dir, seed+".ndjson")
		for flag, f := range map[string]string{"-oX": "xml", "-oG": "grepable", "-oL": "list", "-oJ": "json", "-oN": "normal"} {
			files[f] = filepath.Join(dir, seed+"."+f)
			args = append(args, flag, files[f])
		}
		if code, out := runIn(t, tb.ScanNS(), args...); code != 0 {
			t.Fatalf("scan --seed %s: exit %d\n%s", seed, code, out)
		}
		return files
	}
	a, b := scanOnce("1"), scanOnce("2")

	t.Run("xmllint --dtdvalid", func(t *testing.T) {
		for _, f := range []string{a["xml"], b["xml"]} {
			if out, err := exec.Command("xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", f).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", f, err, out)
			}
		}
		x, _ := os.ReadFile(a["xml"])
		// One host per answering address: 16 + 4 prohibited.
		if n := bytes.Count(x, []byte("<host ")); n != 20 {
			t.Errorf("%d <host> elements, want 20", n)
		}
	})

	t.Run("ndiff", func(t *testing.T) {
		out, err := exec.Command("ndiff", a["xml"], b["xml"]).CombinedOutput()
		if err != nil {
			t.Fatalf("ndiff: %v (exit 1: differences)\n%s", err, out)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(l, "-xdpscan") && !strings.HasPrefix(l, "+xdpscan") && !strings.HasPrefix(l, "-Nmap") && !strings.HasPrefix(l, "+Nmap") {
				t.Errorf("ndiff reports %q:\n%s", l, out)
			}
		}
	})

	t.Run("grepable against nmap -oG", func(t *testing.T) {
		nmapOut := filepath.Join(dir, "nmap.gnmap")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := []string{"netns", "exec", tb.ScanNS(), "nmap", "-sS", "-sU", "-Pn", "-n", "-p", "T:22,80,81,U:53,54",
			"--max-retries", "1", "--host-timeout", "20s", "-oG", nmapOut}
		if out, err := exec.CommandContext(ctx, "ip", append(args, toolTargets...)...).CombinedOutput(); err != nil {
			t.Fatalf("nmap: %v\n%s", err, out)
		}
		nmap := parseGrepable(t, nmapOut)
		ours := parseGrepable(t, a["grepable"])
		byAddr := map[netip.Addr]*gnmap.Host{}
		for _, h := range nmap.Hosts {
			byAddr[h.Addr] = h
		}
		if len(ours.Hosts) != 20 || len(nmap.Hosts) != 21 {
			t.Errorf("%d hosts (want 20), nmap %d (want 21)", len(ours.Hosts), len(nmap.Hosts))
		}
		for _, h := range ours.Hosts {
			if n := byAddr[h.Addr]; n == nil || !reflect.DeepEqual(h, n) {
				t.Errorf("%s:\n ours %+v\n nmap %+v", h.Addr, *h, n)
			}
		}
		if n := byAddr[netip.MustParseAddr("198.18.0.245")]; n == nil || n.Ports[0].State != "filtered" {
			t.Errorf("nmap's .245: %+v, want its ports filtered (no answer)", n)
		}
	})

	t.Run("list against masscan -oL", func(t *testing.T) {
		out := filepath.Join(dir, "masscan.list")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := append([]string{"netns", "exec", tb.ScanNS(), "masscan"}, toolTargets...)
		args = append(args, "-p", toolPorts, "--ping", "--rate", "2000", "--wait", "1", "--show", "closed",
			"--adapter", testbed.ScanIf, "--adapter-ip", testbed.ScanIP.String(), "--router-mac", testbed.TargetMAC.String(), "-oL", out)
		// masscan can wait forever on a quiet link after --wait: a datagram
		// from the target every 200 ms lets it see time pass.
		stop := tickFromTarget(t, tb)
		res, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		stop()
		if err != nil {
			t.Fatalf("masscan: %v\n%s", err, res)
		}
		theirs := listLines(t, out)
		ours := listLines(t, a["list"])
		var filtered []string
		ours = slices.DeleteFunc(ours, func(l string) bool {
			if strings.HasPrefix(l, "filtered ") {
				filtered = append(filtered, l)
				return true
			}
			return false
		})
		if !slices.Equal(ours, theirs) {
			t.Errorf("list differs from masscan's:\n ours    %q\n masscan %q", ours, theirs)
		}
		// Each prohibited address: 5 ports and the echo request, filtered.
		if len(filtered) != 4*6 {
			t.Errorf("%d filtered lines, want 24: %q", len(filtered), filtered)
		}
		for _, l := range filtered {
			if f := strings.Fields(l); !strings.HasPrefix(f[3], "198.18.0.20") {
				t.Errorf("filtered line %q is not a prohibited address's", l)
			}
		}
		if len(theirs) < 16*6 {
			t.Errorf("masscan found %d results, want 96: the comparison would be weak", len(theirs))
		}
	})

	t.Run("jq parses the JSON array", func(t *testing.T) {
		out, err := exec.Command("jq", "length", a["json"]).CombinedOutput()
		if err != nil {
			t.Fatalf("jq: %v\n%s", err, out)
		}
		nd, _ := os.ReadFile(a["ndjson"])
		if lines := bytes.Count(nd, []byte("\n")); strings.TrimSpace(string(out)) != strconv.Itoa(lines) || lines < 100 {
			t.Errorf("jq length %s, NDJSON lines %d (want equal, at least 100)", out, lines)
		}
		var recs []map[string]any
		raw, _ := os.ReadFile(a["json"])
		if err := json.Unmarshal(raw, &recs); err != nil {
			t.Error(err)
		}
	})
}

// TestOutputsUnprivilegedConnect: a scan with no privilege at all (the
// connect fallback, uid 65534) writes nmap's XML and grepable files too:
// valid against nmap.dtd, scaninfo type "connect", every host whole.
func TestOutputsUnprivilegedConnect(t *testing.T) {
	tb := upTestbed(t, testbed.Config{})
	dir := nobodyDir(t)
	xmlOut, grepOut := filepath.Join(dir, "c.xml"), filepath.Join(dir, "c.gnmap")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", tb.ScanNS(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", binary, "scan", "198.18.0.0/28", "-p", "22,80,81", "--allow", "198.18.0.0/15",
		"--connect-timeout", "300ms", "--status", "none", "-oD", filepath.Join(dir, "c.ndjson"), "-oX", xmlOut, "-oG", grepOut)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unprivileged scan: %v\n%s", err, out)
	}
	if out, err := exec.Command("xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", xmlOut).CombinedOutput(); err != nil {
		t.Errorf("xmllint --dtdvalid: %v\n%s", err, out)
	}
	x, _ := os.ReadFile(xmlOut)
	if !bytes.Contains(x, []byte(`<scaninfo type="connect" protocol="tcp" numservices="3" services="22,80-81"/>`)) {
		t.Errorf("no connect scaninfo:\n%s", x)
	}
	g := parseGrepable(t, grepOut)
	if len(g.Hosts) != 16 {
		t.Fatalf("%d hosts, want 16", len(g.Hosts))
	}
	for _, h := range g.Hosts {
		var got []string
		for _, p := range h.Ports {
			got = append(got, strconv.Itoa(int(p.Port))+"/"+p.State)
		}
		if want := []string{"22/open", "80/open", "81/closed"}; h.Status != "Up" || !slices.Equal(got, want) {
			t.Errorf("%s: %s %v, want Up %v", h.Addr, h.Status, got, want)
		}
	}
}

func parseGrepable(t *testing.T, path string) *gnmap.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gnmap.Parse(f)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return g
}

// listLines is a masscan -oL file's result lines without their time,
// sorted.
func listLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("%s: line %q: want 5 fields", path, l)
		}
		lines = append(lines, strings.Join(f[:4], " "))
	}
	slices.Sort(lines)
	return lines
}

// tickFromTarget sends a datagram from the target to the scanner every
// 200 ms until stop is called.
func tickFromTarget(t *testing.T, tb *testbed.Testbed) (stop func()) {
	t.Helper()
	var conn net.Conn
	err := testbed.Do(tb.TargetNS(), func() (err error) {
		conn, err = net.Dial("udp4", netip.AddrPortFrom(testbed.ScanIP, 9).String())
		return err
	})
	if err != nil {
		t.Fatalf("a socket in the target namespace: %v", err)
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				conn.Write([]byte("tick"))
			}
		}
	}()
	return func() { close(done); <-finished; conn.Close() }
}
