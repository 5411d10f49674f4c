package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/targets"
)

var (
	srcMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	srcIP  = netip.MustParseAddr("198.19.0.1")
	srcIP6 = netip.MustParseAddr("2001:2:0:ffff::1")
)

// families are the sources and destinations every template is tested with:
// edge values of both address families.
var families = []struct {
	name string
	src  netip.Addr
	dsts []string
}{
	{"ipv4", srcIP, []string{"198.18.0.1", "198.18.255.254", "255.255.255.255", "0.0.0.1"}},
	{"ipv6", srcIP6, []string{"2001:2::1", "2001:2::ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1"}},
}

// testCookie is the cookie a probe from src to dst must carry.
func testCookie(key CookieKey, src, dst netip.Addr, proto uint8, sport, dport uint16) uint32 {
	if src.Is6() {
		return key.Cookie6(src.As16(), dst.As16(), proto, sport, dport)
	}
	return key.Cookie4(src.As4(), dst.As4(), proto, sport, dport)
}

// decodedIP is the destination and L4 protocol of a frame's IP layer.
func decodedIP(p gopacket.Packet) (netip.Addr, layers.IPProtocol, bool) {
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		a, _ := netip.AddrFromSlice(ip.DstIP.To4())
		return a, ip.Protocol, ip.IHL == 5 && ip.TTL == 64
	case *layers.IPv6:
		a, _ := netip.AddrFromSlice(ip.DstIP)
		return a, ip.NextHeader, ip.HopLimit == 64 && int(ip.Length) == len(ip.Payload)
	}
	return netip.Addr{}, 0, false
}

// TestSYNTemplateChecksums checks the incrementally patched frames of both
// families against gopacket's decoding and its own checksum computation.
func TestSYNTemplateChecksums(t *testing.T) {
	key := CookieKey{11, 12}
	buf := make([]byte, MaxFrame)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			tmpl := NewSYNTemplate(srcMAC, dstMAC, fam.src, 40007, key)
			for _, dst := range fam.dsts {
				for _, port := range []uint16{1, 80, 443, 65535} {
					d := netip.MustParseAddr(dst)
					n := tmpl.Fill(buf, d, port)
					p := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
					got, proto, sane := decodedIP(p)
					tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
					if got != d || proto != layers.IPProtocolTCP || !sane || tcp == nil || uint16(tcp.DstPort) != port || !tcp.SYN || tcp.ACK {
						t.Fatalf("%s:%d: decoded % x", dst, port, buf[:n])
					}
					if want := testCookie(key, fam.src, d, targets.ProtoTCP, 40007, port); tcp.Seq != want {
						t.Fatalf("%s:%d: seq %#x, want cookie %#x", dst, port, tcp.Seq, want)
					}
					if ok, err := testpkt.ChecksumsMatch(buf[:n]); !ok || err != nil {
						t.Fatalf("%s:%d: checksums differ from gopacket's in % x (%v)", dst, port, buf[:n], err)
					}
				}
			}
		})
	}
}

func TestRateLimiterIsExactOnAverage(t *testing.T) {
	const rate = 20000
	rl := NewRateLimiter(rate)
	ctx := context.Background()
	var sent int
	start := time.Now()
	for sent < 4000 {
		sent += rl.Next(ctx, BatchSize)
	}
	// 4000 probes at 20k/s is 200ms: never early by more than a batch.
	if el := time.Since(start); el < time.Duration(float64(sent-BatchSize)/rate*float64(time.Second)) {
		t.Fatalf("sent %d in %v: faster than %d/s", sent, el, rate)
	}
}

// TestRateLimiterMinBatch: with MinBatch, every batch carries at least that
// many probes (the limiter waits for them to fall due) and the average rate
// still holds.
func TestRateLimiterMinBatch(t *testing.T) {
	const rate, minBatch = 20000, 10
	rl := NewRateLimiter(rate)
	rl.MinBatch = minBatch
	var sent int
	start := time.Now()
	for sent < 2000 {
		n := rl.Next(context.Background(), 256)
		if n < minBatch {
			t.Fatalf("batch of %d, want at least %d", n, minBatch)
		}
		sent += n
	}
	if el := time.Since(start); el < time.Duration(float64(sent-256)/rate*float64(time.Second)) {
		t.Fatalf("sent %d in %v: faster than %d/s", sent, el, rate)
	}
}

var testResult = Result{Addr: netip.MustParseAddr("198.18.3.7"), Port: 443, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64,
	Time: time.Date(2026, 11, 21, 8, 0, 0, 123456789, time.UTC)}

func TestResultFormats(t *testing.T) {
	golden := map[string]string{
		"ndjson":   `{"ip":"198.18.3.7","port":443,"proto":"tcp","state":"open","reason":"syn-ack","ttl":64,"ts":"2026-11-21T08:00:00.123456789Z"}` + "\n",
		"list":     "#masscan\nopen tcp 443 198.18.3.7 1795248000\n# end\n",
		"grepable": "Timestamp: 1795248000\tHost: 198.18.3.7 ()\tPorts: 443/open/tcp////\n",
		"csv":      "ip,port,proto,state,ttl,ts\n198.18.3.7,443,tcp,open,64,2026-11-21T08:00:00.123456789Z\n",
		"human":    "open   tcp 198.18.3.7:443 ttl=64\n",
	}
	for _, tc := range []struct {
		name string
		r    Result
		want string
	}{
		{"udp open", Result{Addr: testResult.Addr, Port: 53, Proto: "udp", State: "open", Reason: "udp-response", TTL: 64},
			"open   udp 198.18.3.7:53 ttl=64 udp-response\n"},
		{"router's unreachable", Result{Addr: testResult.Addr, Port: 161, Proto: "udp", State: "filtered", Reason: "host-unreach",
			From: netip.MustParseAddr("198.19.0.2"), TTL: 63}, "filtered udp 198.18.3.7:161 ttl=63 host-unreach from 198.19.0.2\n"},
		{"echo reply", Result{Addr: testResult.Addr, Proto: "icmp", State: "up", Reason: "echo-reply", TTL: 64},
			"up     icmp 198.18.3.7 ttl=64 echo-reply\n"},
		{"IPv6 port in brackets", Result{Addr: netip.MustParseAddr("2001:2::7"), Port: 22, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64},
			"open   tcp [2001:2::7]:22 ttl=64\n"},
		{"ICMPv6 port unreachable from a router", Result{Addr: netip.MustParseAddr("2001:2::7"), Port: 53, Proto: "udp", State: "closed",
			Reason: "port-unreach", From: netip.MustParseAddr("2001:2:0:ffff::2"), TTL: 64},
			"closed udp [2001:2::7]:53 ttl=64 port-unreach from 2001:2:0:ffff::2\n"},
	} {
		var b bytes.Buffer
		w, _ := NewResultWriter(&b, "human")
		w.Write(tc.r)
		w.Close()
		if b.String() != tc.want {
			t.Errorf("human, %s:\n got %q\nwant %q", tc.name, b.String(), tc.want)
		}
	}
	for format, want := range golden {
		var b bytes.Buffer
		w, err := NewResultWriter(&b, format)
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
	w, _ := NewResultWriter(&b, "ndjson")
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
	w, _ := NewResultWriter(&b, "xml")
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
	if len(run.Hosts) != 2 || run.Hosts[0].Address.Addr != "198.18.3.7" || run.Hosts[0].Ports[0].State.Reason != "syn-ack" ||
		run.Hosts[1].Ports[0].State.State != "closed" || run.Finished.Time == 0 || !strings.Contains(b.String(), "<?xml") {
		t.Fatalf("unexpected XML:\n%s", b.String())
	}
}

func BenchmarkProbeHotPath(b *testing.B) {
	set := targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.19.255.255")})
	perm := targets.NewPermutation(set.Len()*4, 1)
	ports := []uint16{22, 80, 443, 8080}
	tmpl := NewSYNTemplate(srcMAC, dstMAC, srcIP, 40000, CookieKey{1, 2})
	buf := make([]byte, 128)
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		x := perm.At(i % perm.Len())
		tmpl.Fill(buf, set.At(x/4), ports[x%4])
	}
}

func BenchmarkResultNDJSON(b *testing.B) {
	w, _ := NewResultWriter(discard{}, "ndjson")
	b.ReportAllocs()
	for b.Loop() {
		w.Write(testResult)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
