package output

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/internal/gnmap"
	"github.com/xdpscan/xdpscan/scan"
)

const nmapDTD = "/usr/share/nmap/nmap.dtd"

// fixtureResults are the replies behind testdata/nmap-7.93-sS.*: nmap -sS
// -Pn -n -p 22,80,81 198.18.0.0/30 198.18.0.200 198.18.0.245 on the
// testbed (testbed up --prohibited-from 200), whose .200 answers ICMP
// admin prohibited and .245 nothing.
func fixtureResults() []scan.Result {
	ts := time.Unix(1796403540, 0)
	var rs []scan.Result
	for i := range 4 {
		a := netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
		rs = append(rs,
			scan.Result{Addr: a, Port: 22, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts},
			scan.Result{Addr: a, Port: 80, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts},
			scan.Result{Addr: a, Port: 81, Proto: "tcp", State: "closed", Reason: "reset", TTL: 64, Time: ts})
	}
	for _, p := range []uint16{22, 80, 81} {
		rs = append(rs, scan.Result{Addr: netip.MustParseAddr("198.18.0.200"), Port: p, Proto: "tcp", State: "filtered",
			Reason: "admin-prohibited", TTL: 64, Time: ts})
	}
	return rs
}

var fixtureMeta = Meta{Args: []string{"xdpscan", "scan", "-p", "22,80,81", "198.18.0.0/30", "198.18.0.200", "198.18.0.245"},
	TCP: []uint16{22, 80, 81}, Hosts: 6}

// mixedResults has every kind of result: both families, TCP, UDP, echo,
// a router's unreachable, a weak UDP answer's annotated reason.
func mixedResults() []scan.Result {
	ts := time.Unix(1700000000, 0)
	a, b, c := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("2001:2::7")
	return []scan.Result{
		{Addr: a, Port: 80, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts},
		{Addr: a, Port: 53, Proto: "udp", State: "closed", Reason: "port-unreach", TTL: 64, Time: ts},
		{Addr: a, Port: 1900, Proto: "udp", State: "open", Reason: "udp-response;cookie-bits=8", TTL: 64, Time: ts.Add(time.Second)},
		{Addr: a, Port: 22, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts},
		{Addr: a, Proto: "icmp", State: "up", Reason: "echo-reply", TTL: 64, Time: ts},
		{Addr: b, Proto: "icmp", State: "up", Reason: "echo-reply", TTL: 64, Time: ts},
		{Addr: c, Port: 22, Proto: "tcp", State: "filtered", Reason: "admin-prohibited", From: netip.MustParseAddr("2001:2::1"), TTL: 63, Time: ts},
		{Addr: c, Port: 443, Proto: "tcp", State: "closed", Reason: "reset", TTL: 64, Time: ts},
	}
}

var mixedMeta = Meta{Args: []string{"xdpscan", "scan", "--ping", "-p", "22,80,443,U:53,U:1900"}, TCP: []uint16{22, 80, 443}, UDP: []uint16{53, 1900}, Hosts: 12}

func render(t *testing.T, format string, opt Options, rs []scan.Result) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := New(&b, format, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func dtdValid(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xmllint", "--noout", "--dtdvalid", nmapDTD, path).CombinedOutput(); err != nil {
		t.Errorf("%s: xmllint --dtdvalid %s: %v\n%s\n%s", name, nmapDTD, err, out, b)
	}
}

type xmlRun struct {
	ScanInfo []struct {
		Type        string `xml:"type,attr"`
		Protocol    string `xml:"protocol,attr"`
		NumServices int    `xml:"numservices,attr"`
		Services    string `xml:"services,attr"`
	} `xml:"scaninfo"`
	Hosts []struct {
		Status struct {
			State  string `xml:"state,attr"`
			Reason string `xml:"reason,attr"`
		} `xml:"status"`
		Address struct {
			Addr     string `xml:"addr,attr"`
			AddrType string `xml:"addrtype,attr"`
		} `xml:"address"`
		Ports []struct {
			Protocol string `xml:"protocol,attr"`
			PortID   uint16 `xml:"portid,attr"`
			State    struct {
				State    string `xml:"state,attr"`
				Reason   string `xml:"reason,attr"`
				ReasonIP string `xml:"reason_ip,attr"`
			} `xml:"state"`
			Service struct {
				Name string `xml:"name,attr"`
			} `xml:"service"`
		} `xml:"ports>port"`
	} `xml:"host"`
	Finished struct {
		Exit string `xml:"exit,attr"`
	} `xml:"runstats>finished"`
	Counts struct {
		Up    int `xml:"up,attr"`
		Down  int `xml:"down,attr"`
		Total int `xml:"total,attr"`
	} `xml:"runstats>hosts"`
}

// TestXMLValidAgainstNmapDTD: xmllint --dtdvalid nmap.dtd accepts the
// XML of every kind of result, of no result, and of a scan still running
// (the file as a SIGKILL would leave it); one <host> per address with all
// its ports, scaninfo and runstats as nmap writes them.
func TestXMLValidAgainstNmapDTD(t *testing.T) {
	b := render(t, "xml", Options{Meta: mixedMeta}, mixedResults())
	dtdValid(t, "mixed", b)
	dtdValid(t, "empty", render(t, "xml", Options{Meta: mixedMeta}, nil))
	dtdValid(t, "no meta", render(t, "xml", Options{}, mixedResults()))

	var run xmlRun
	if err := xml.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if len(run.ScanInfo) != 2 || run.ScanInfo[0] != (struct {
		Type        string `xml:"type,attr"`
		Protocol    string `xml:"protocol,attr"`
		NumServices int    `xml:"numservices,attr"`
		Services    string `xml:"services,attr"`
	}{"syn", "tcp", 3, "22,80,443"}) || run.ScanInfo[1].Type != "udp" || run.ScanInfo[1].Services != "53,1900" {
		t.Errorf("scaninfo %+v", run.ScanInfo)
	}
	if len(run.Hosts) != 3 {
		t.Fatalf("%d hosts, want 3 (one per address):\n%s", len(run.Hosts), b)
	}
	h := run.Hosts[0]
	if h.Address.Addr != "198.18.0.1" || h.Address.AddrType != "ipv4" || h.Status.State != "up" || h.Status.Reason != "echo-reply" || len(h.Ports) != 4 {
		t.Errorf("first host %+v", h)
	}
	var order []string
	for _, p := range h.Ports {
		order = append(order, p.Protocol+"/"+p.State.State+"/"+p.State.Reason)
	}
	if want := []string{"tcp/open/syn-ack", "tcp/open/syn-ack", "udp/closed/port-unreach", "udp/open/udp-response"}; !reflect.DeepEqual(order, want) {
		t.Errorf("ports %v, want %v (TCP then UDP, by port; reasons without xdpscan's annotations)", order, want)
	}
	if s, err := LoadServices(ServicesFile); err == nil && (h.Ports[0].Service.Name != s.Name("tcp", 22) || h.Ports[0].Service.Name == "") {
		t.Errorf("port 22's service %q, nmap-services says %q", h.Ports[0].Service.Name, s.Name("tcp", 22))
	}
	v6 := run.Hosts[2]
	if v6.Address.AddrType != "ipv6" || v6.Status.State != "up" || v6.Ports[0].State.ReasonIP != "2001:2::1" {
		t.Errorf("IPv6 host %+v", v6)
	}
	if run.Counts.Up != 3 || run.Counts.Down != 9 || run.Counts.Total != 12 || run.Finished.Exit != "success" {
		t.Errorf("runstats %+v %+v", run.Counts, run.Finished)
	}

	// The file while the scan runs: a valid document, no host, exit="error".
	path := filepath.Join(t.TempDir(), "running.xml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := New(f, "xml", Options{Meta: mixedMeta})
	for _, r := range mixedResults() {
		w.Write(r)
	}
	w.Flush()
	running, _ := os.ReadFile(path)
	dtdValid(t, "running", running)
	if !bytes.Contains(running, []byte(`exit="error"`)) || bytes.Contains(running, []byte("<host ")) {
		t.Errorf("the running scan's file:\n%s", running)
	}
	w.Close()
	closed, _ := os.ReadFile(path)
	dtdValid(t, "closed", closed)
	if bytes.Count(closed, []byte("<host ")) != 3 || bytes.Count(closed, []byte("</nmaprun>")) != 1 {
		t.Errorf("after Close:\n%s", closed)
	}
}

// body is a grouped output without its lines that hold the time: the
// header and trailer comments, nmaprun's start, runstats.
func body(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "<!--") || strings.HasPrefix(l, "<nmaprun") || strings.HasPrefix(l, "<runstats") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// TestGroupedFormatsWriteHostsWhole: nmap's three formats come out the
// same whatever order the replies came in, and the same when the results
// outgrow memory and are sorted through the temporary file (SpillAt 7:
// 40 runs of 7 results merged), which is left nowhere.
func TestGroupedFormatsWriteHostsWhole(t *testing.T) {
	var rs []scan.Result
	ts := time.Unix(1700000000, 0)
	for i := range 60 {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i % 3), byte(i * 7)})
		if i%5 == 0 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(i)})
		}
		for _, p := range []uint16{22, 80, 443, 8080} {
			if (i+int(p))%3 != 0 {
				rs = append(rs, scan.Result{Addr: a, Port: p, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts})
			}
		}
		rs = append(rs, scan.Result{Addr: a, Port: 53, Proto: "udp", State: "closed", Reason: "port-unreach", TTL: 64, Time: ts})
	}
	dir := t.TempDir()
	for _, format := range []string{"xml", "grepable", "normal"} {
		t.Run(format, func(t *testing.T) {
			var want string
			for seed := range uint64(4) {
				shuffled := append([]scan.Result(nil), rs...)
				rand.New(rand.NewPCG(seed, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				opt := Options{Meta: mixedMeta, TempDir: dir}
				if seed%2 == 1 {
					opt.SpillAt = 7
				}
				got := body(render(t, format, opt, shuffled))
				if seed == 0 {
					want = got
					continue
				}
				if got != want {
					t.Fatalf("seed %d (spill at %d) differs from seed 0:\n%s\n---\n%s", seed, opt.SpillAt, got, want)
				}
			}
			if hosts := strings.Count(want, "198.18.") + strings.Count(want, "2001:2::"); format == "xml" && hosts != 60 {
				t.Errorf("%d host addresses, want 60", hosts)
			}
		})
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left in %s: %v", dir, left)
	}
}

// TestGrepableIsNmaps holds the grepable output to nmap's: both parse with
// the strict reader of nmap's format, and for the same replies each host's
// Status and every port field equal those of a real nmap -oG file
// (testdata, made on the testbed). nmap -Pn also lists .245, which never
// answered: xdpscan lists only what answered.
func TestGrepableIsNmaps(t *testing.T) {
	if _, err := os.Stat(ServicesFile); err != nil {
		t.Fatalf("%s: %v (nmap's table; the Makefile's deps install nmap)", ServicesFile, err)
	}
	nf, err := os.Open("testdata/nmap-7.93-sS.gnmap")
	if err != nil {
		t.Fatal(err)
	}
	defer nf.Close()
	nmap, err := gnmap.Parse(nf)
	if err != nil {
		t.Fatalf("nmap's own file: %v", err)
	}
	rs := fixtureResults()
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	b := render(t, "grepable", Options{Meta: fixtureMeta}, rs)
	ours, err := gnmap.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%v in:\n%s", err, b)
	}
	if len(ours.Hosts) != 5 || len(nmap.Hosts) != 6 {
		t.Fatalf("%d hosts (want 5), nmap %d (want 6)", len(ours.Hosts), len(nmap.Hosts))
	}
	for i, h := range ours.Hosts {
		if !reflect.DeepEqual(h, nmap.Hosts[i]) {
			t.Errorf("host %d:\n ours %+v\n nmap %+v", i, *h, *nmap.Hosts[i])
		}
	}
	if !strings.Contains(ours.Trailer, "-- 6 IP addresses (5 hosts up) scanned in") {
		t.Errorf("trailer %q", ours.Trailer)
	}
	for _, bad := range []string{
		"Host: 198.18.0.1 ()\tPorts: 22/open/tcp////\n",       // six slashes: xdpscan's old line
		"Host: 198.18.0.1 ()\tPorts: 22/open/tcp//ssh////\n",  // eight
		"Host: 198.18.0.1 ()\tStatus: up\n",                   // case
		"Timestamp: 1\tHost: 198.18.0.1 ()\tStatus: Up\n",     // masscan's
		"Host: 198.18.0.1\tStatus: Up\n",                      // no ()
		"Host: 198.18.0.1 ()\tPorts: 22/opened/tcp//ssh///\n", // state
	} {
		doc := "# Nmap 7.93 scan initiated Fri Dec  4 16:59:00 2026 as: nmap\n" + bad + "# Nmap done at Fri Dec  4 16:59:02 2026 -- 1 IP address (1 host up) scanned in 1.45 seconds\n"
		if _, err := gnmap.Parse(strings.NewReader(doc)); err == nil {
			t.Errorf("the strict reader accepts %q", bad)
		}
	}
}

// TestXMLMatchesNmaps: for the same replies, the hosts, their status and
// every port's state, reason and service equal nmap's own -oX (testdata),
// but for .245, which nmap -Pn lists without an answer.
func TestXMLMatchesNmaps(t *testing.T) {
	nb, err := os.ReadFile("testdata/nmap-7.93-sS.xml")
	if err != nil {
		t.Fatal(err)
	}
	var nmap, ours xmlRun
	if err := xml.Unmarshal(nb, &nmap); err != nil {
		t.Fatal(err)
	}
	b := render(t, "xml", Options{Meta: fixtureMeta}, fixtureResults())
	dtdValid(t, "fixture", b)
	if err := xml.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ours.ScanInfo, nmap.ScanInfo) {
		t.Errorf("scaninfo %+v, nmap %+v", ours.ScanInfo, nmap.ScanInfo)
	}
	if len(ours.Hosts) != 5 {
		t.Fatalf("%d hosts, want 5", len(ours.Hosts))
	}
	for i, h := range ours.Hosts {
		n := nmap.Hosts[i]
		n.Status = h.Status // nmap -Pn: "user-set"; xdpscan: the reply that showed the host
		if !reflect.DeepEqual(h, n) {
			t.Errorf("host %d:\n ours %+v\n nmap %+v", i, h, n)
		}
	}
}

// TestJSONArrayValidAtEveryFlush: masscan's -oJ array parses (encoding/json
// and jq) after every flush of a file (a SIGKILL's), and after Close.
func TestJSONArrayValidAtEveryFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := NewWriter(f, "json")
	check := func(when string, want int) {
		b, _ := os.ReadFile(path)
		var v []struct {
			IP    string `json:"ip"`
			Ports []struct {
				Port   int    `json:"port"`
				Status string `json:"status"`
			} `json:"ports"`
		}
		if err := json.Unmarshal(b, &v); err != nil || len(v) != want {
			t.Fatalf("%s: %d records (want %d), %v:\n%s", when, len(v), want, err, b)
		}
		out, err := exec.Command("jq", "length", path).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(want) {
			t.Fatalf("%s: jq length: %v %q, want %d", when, err, out, want)
		}
	}
	w.Flush()
	check("before any result", 0)
	rs := mixedResults()
	for i, r := range rs {
		w.Write(r)
		w.Flush()
		check("after result "+strconv.Itoa(i+1), i+1)
	}
	w.Close()
	check("after Close", len(rs))
}

// TestListIsMasscans: the list lines are masscan's -oL (state, protocol,
// port, address, time; "open icmp 0" for an echo reply), between its
// "#masscan" and "# end".
func TestListIsMasscans(t *testing.T) {
	got := string(render(t, "list", Options{}, mixedResults()[3:6]))
	want := "#masscan\nopen tcp 22 198.18.0.1 1700000000\nopen icmp 0 198.18.0.1 1700000000\nopen icmp 0 198.18.0.9 1700000000\n# end\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestCSVHasReason: admin-prohibited and host-unreach are told apart, and
// who sent the error.
func TestCSVHasReason(t *testing.T) {
	rs := mixedResults()[6:7]
	unreach := rs[0]
	unreach.Reason, unreach.Port = "host-unreach", 23
	got := string(render(t, "csv", Options{}, append(rs, unreach)))
	want := "ip,port,proto,state,reason,from,ttl,ts\n" +
		"2001:2::7,22,tcp,filtered,admin-prohibited,2001:2::1,63,2023-11-14T22:13:20Z\n" +
		"2001:2::7,23,tcp,filtered,host-unreach,2001:2::1,63,2023-11-14T22:13:20Z\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestServicesFileMissing: without nmap installed the outputs name no
// service and stay valid.
func TestServicesFileMissing(t *testing.T) {
	opt := Options{Meta: fixtureMeta}
	opt.Meta.Services = &Services{} // as LoadServices of nothing
	b := render(t, "xml", opt, fixtureResults())
	dtdValid(t, "no services", b)
	if bytes.Contains(b, []byte("<service")) {
		t.Errorf("a service named without nmap-services:\n%s", b)
	}
	g := render(t, "grepable", opt, fixtureResults())
	if _, err := gnmap.Parse(bytes.NewReader(g)); err != nil || !bytes.Contains(g, []byte("22/open/tcp/////,")) {
		t.Errorf("%v:\n%s", err, g)
	}
	if _, err := LoadServices(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("LoadServices of a missing file: no error")
	}
}

// TestOpenSetWritesEachFormat: one scan's results reach several files,
// each in its format, the same as a Writer alone makes.
func TestOpenSetWritesEachFormat(t *testing.T) {
	dir := t.TempDir()
	var dests []Dest
	for _, spec := range []string{"xml:a.xml", "grepable:a.gnmap", "list:a.lst", "json:a.json", "ndjson:a.ndjson", "normal:a.nmap", "csv:a.csv"} {
		d, err := ParseDest(spec)
		if err != nil {
			t.Fatal(err)
		}
		d.Path = filepath.Join(dir, d.Path)
		dests = append(dests, d)
	}
	s, err := OpenSet(dests, Options{Meta: mixedMeta}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mixedResults() {
		if err := s.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dests {
		got, _ := os.ReadFile(d.Path)
		want := render(t, d.Format, Options{Meta: mixedMeta}, mixedResults())
		if body(got) != body(want) {
			t.Errorf("%s:\n%s\nwant\n%s", d.Format, got, want)
		}
	}
	for _, bad := range []string{"xml", "xml:", "yaml:a.yaml"} {
		if _, err := ParseDest(bad); err == nil {
			t.Errorf("ParseDest(%q): no error", bad)
		}
	}
	if _, err := OpenSet([]Dest{{"xml", filepath.Join(dir, "b.xml")}, {"list", filepath.Join(dir, "missing", "b.lst")}}, Options{}, nil); err == nil {
		t.Error("OpenSet into a missing directory: no error")
	}
}

// TestGroupedFormatsHoldBoundedResults: a grouped writer never holds more
// than SpillAt results in memory; the rest wait in sorted runs of the
// temporary file, and every result comes out once, sorted by address.
// (Measured with the default 256Ki: 2M results in random order, peak heap
// in use 77 MB while writing, the same as for 200k.)
func TestGroupedFormatsHoldBoundedResults(t *testing.T) {
	const n, limit = 20000, 1000
	var b bytes.Buffer
	w, err := New(&b, "grepable", Options{TempDir: t.TempDir(), SpillAt: limit})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	ts := time.Unix(1700000000, 0)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if err := w.Write(scan.Result{Addr: a, Port: uint16(1 + rnd.IntN(1000)), Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts}); err != nil {
			t.Fatal(err)
		}
		if held := len(w.hosts.mem); held >= limit {
			t.Fatalf("after %d results %d held in memory, limit %d", i+1, held, limit)
		}
	}
	if runs := len(w.hosts.runs); runs != n/limit {
		t.Errorf("%d sorted runs, want %d", runs, n/limit)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := gnmap.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Hosts) != n {
		t.Fatalf("%d hosts, want %d", len(g.Hosts), n)
	}
	for i := 1; i < len(g.Hosts); i++ {
		if g.Hosts[i-1].Addr.Compare(g.Hosts[i].Addr) >= 0 {
			t.Fatalf("host %d %s after %s: not sorted", i, g.Hosts[i].Addr, g.Hosts[i-1].Addr)
		}
	}
}

// TestNormalIsNmaps: for the same replies, the normal output's host
// reports and port lines (port, state, service) are nmap's -oN (testdata),
// with nmap --reason's REASON column added; .245, which never answered, is
// nmap -Pn's alone.
func TestNormalIsNmaps(t *testing.T) {
	nb, err := os.ReadFile("testdata/nmap-7.93-sS.nmap")
	if err != nil {
		t.Fatal(err)
	}
	reports := func(b []byte) map[string][]string {
		m := map[string][]string{}
		host := ""
		for _, l := range strings.Split(string(b), "\n") {
			if a, ok := strings.CutPrefix(l, "Nmap scan report for "); ok {
				host = a
				m[host] = nil
				continue
			}
			f := strings.Fields(l)
			if host != "" && len(f) >= 3 && (strings.Contains(f[0], "/tcp") || strings.Contains(f[0], "/udp") || f[0] == "PORT") {
				m[host] = append(m[host], strings.Join(f[:3], " "))
			}
		}
		return m
	}
	nmap := reports(nb)
	got := render(t, "normal", Options{Meta: fixtureMeta}, fixtureResults())
	ours := reports(got)
	delete(nmap, "198.18.0.245")
	if !reflect.DeepEqual(ours, nmap) {
		t.Errorf("ours %v\nnmap %v\n%s", ours, nmap, got)
	}
	if !bytes.Contains(got, []byte("22/tcp open   ssh       syn-ack ttl 64\n")) || !bytes.Contains(got, []byte("Host is up, received syn-ack ttl 64.")) {
		t.Errorf("no aligned REASON column or host line:\n%s", got)
	}
}

// BenchmarkGroupedXML writes 600k results in random order (two sorted
// runs through the temporary file, then the merge) as nmap XML, and
// reports the peak heap in use while writing: bounded by the 256Ki results
// held in memory, whatever the scan's size.
//
//	go test -run X -bench GroupedXML -benchtime 1x ./output/
func BenchmarkGroupedXML(b *testing.B) {
	const n = 600_000
	var peak uint64
	for b.Loop() {
		w, _ := New(discard{}, "xml", Options{TempDir: b.TempDir()})
		rnd := rand.New(rand.NewPCG(1, 2))
		ts := time.Unix(1700000000, 0)
		var ms runtime.MemStats
		for i := range n {
			v := rnd.Uint32()
			w.Write(scan.Result{Addr: netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)}), Port: uint16(v>>3) | 1,
				Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts})
			if i%50_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		w.Close()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/result")
}

// TestXMLFileEndsWithItsTrailer: on a file, the XML writer keeps the
// document valid between flushes with a provisional trailer it steps back
// over. The last write can be shorter than that trailer (a scan with no
// host, or hosts flushed just before the end): what remains of the
// provisional one must go, as TestTerminalOutput/interrupt once found a
// stray ">" after </nmaprun>.
func TestXMLFileEndsWithItsTrailer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []scan.Result
	}{
		{"no host", nil},
		{"some hosts", readbackResults()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.xml")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, err := New(f, "xml", Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.results {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(2 * FlushDelay) // the provisional trailer is on disk
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(b, []byte("</nmaprun>\n")) {
				t.Fatalf("the file does not end with the trailer:\n%s", b)
			}
			dtdValid(t, tc.name, b)
		})
	}
}
