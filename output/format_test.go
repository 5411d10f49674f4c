package output

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/scan"
)

var testResult = scan.Result{Addr: netip.MustParseAddr("198.18.3.7"), Port: 443, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64,
	Time: time.Date(2026, 11, 21, 8, 0, 0, 123456789, time.UTC)}

func TestResultFormats(t *testing.T) {
	golden := map[string]string{
		"ndjson": `{"ip":"198.18.3.7","port":443,"proto":"tcp","state":"open","reason":"syn-ack","ttl":64,"ts":"2026-11-21T08:00:00.123456789Z"}` + "\n",
		"list":   "#masscan\nopen tcp 443 198.18.3.7 1795248000\n# end\n",
		"csv":    "ip,port,proto,state,reason,from,ttl,ts\n198.18.3.7,443,tcp,open,syn-ack,,64,2026-11-21T08:00:00.123456789Z\n",
		"json":   "[\n" + `{   "ip": "198.18.3.7",   "timestamp": "1795248000", "ports": [ {"port": 443, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] }` + "\n]\n",
		"human":  "open   tcp 198.18.3.7:443 ttl=64\n",
	}
	for _, tc := range []struct {
		name string
		r    scan.Result
		want string
	}{
		{"udp open", scan.Result{Addr: testResult.Addr, Port: 53, Proto: "udp", State: "open", Reason: "udp-response", TTL: 64},
			"open   udp 198.18.3.7:53 ttl=64 udp-response\n"},
		{"router's unreachable", scan.Result{Addr: testResult.Addr, Port: 161, Proto: "udp", State: "filtered", Reason: "host-unreach",
			From: netip.MustParseAddr("198.19.0.2"), TTL: 63}, "filtered udp 198.18.3.7:161 ttl=63 host-unreach from 198.19.0.2\n"},
		{"echo reply", scan.Result{Addr: testResult.Addr, Proto: "icmp", State: "up", Reason: "echo-reply", TTL: 64},
			"up     icmp 198.18.3.7 ttl=64 echo-reply\n"},
		{"IPv6 port in brackets", scan.Result{Addr: netip.MustParseAddr("2001:2::7"), Port: 22, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64},
			"open   tcp [2001:2::7]:22 ttl=64\n"},
		{"ICMPv6 port unreachable from a router", scan.Result{Addr: netip.MustParseAddr("2001:2::7"), Port: 53, Proto: "udp", State: "closed",
			Reason: "port-unreach", From: netip.MustParseAddr("2001:2:0:ffff::2"), TTL: 64},
			"closed udp [2001:2::7]:53 ttl=64 port-unreach from 2001:2:0:ffff::2\n"},
	} {
		var b bytes.Buffer
		w, _ := NewWriter(&b, "human")
		w.Write(tc.r)
		w.Close()
		if b.String() != tc.want {
			t.Errorf("human, %s:\n got %q\nwant %q", tc.name, b.String(), tc.want)
		}
	}
	for format, want := range golden {
		var b bytes.Buffer
		w, err := NewWriter(&b, format)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(testResult)
		w.Close()
		if b.String() != want {
			t.Errorf("%s:\n got %q\nwant %q", format, b.String(), want)
		}
	}
	var b bytes.Buffer
	w, _ := NewWriter(&b, "ndjson")
	w.Write(testResult)
	w.Close()
	var parsed map[string]any
	if err := json.Unmarshal(b.Bytes(), &parsed); err != nil || parsed["port"] != 443.0 {
		t.Fatalf("NDJSON does not parse: %v %v", err, parsed)
	}
}

// TestXMLHasNmapShape parses the XML with the element names nmap's DTD uses.
func TestXMLHasNmapShape(t *testing.T) {
	var b bytes.Buffer
	w, _ := NewWriter(&b, "xml")
	w.Write(testResult)
	closed := testResult
	closed.State, closed.Port, closed.Reason = "closed", 81, "reset"
	w.Write(closed)
	w.Close()
	var run struct {
		XMLName xml.Name `xml:"nmaprun"`
		Scanner string   `xml:"scanner,attr"`
		Hosts   []struct {
			Address struct {
				Addr     string `xml:"addr,attr"`
				AddrType string `xml:"addrtype,attr"`
			} `xml:"address"`
			Ports []struct {
				Protocol string `xml:"protocol,attr"`
				PortID   int    `xml:"portid,attr"`
				State    struct {
					State  string `xml:"state,attr"`
					Reason string `xml:"reason,attr"`
				} `xml:"state"`
			} `xml:"ports>port"`
		} `xml:"host"`
		Finished struct {
			Time int64 `xml:"time,attr"`
		} `xml:"runstats>finished"`
	}
	if err := xml.Unmarshal(b.Bytes(), &run); err != nil {
		t.Fatalf("XML does not parse: %v\n%s", err, b.String())
	}
	// One host, its ports in order: 81 (closed) before 443 (open).
	if len(run.Hosts) != 1 || run.Hosts[0].Address.Addr != "198.18.3.7" || run.Hosts[0].Ports[1].State.Reason != "syn-ack" ||
		run.Hosts[0].Ports[0].State.State != "closed" || run.Finished.Time == 0 || !strings.Contains(b.String(), "<?xml") {
		t.Fatalf("unexpected XML:\n%s", b.String())
	}
}

func BenchmarkResultNDJSON(b *testing.B) {
	w, _ := NewWriter(discard{}, "ndjson")
	b.ReportAllocs()
	for b.Loop() {
		w.Write(testResult)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
