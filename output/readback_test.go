package output

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpscan/xdpscan/scan"
)

func readbackResults() []scan.Result {
	ts := time.Unix(1700000000, 123456789)
	return []scan.Result{
		{Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Proto: "tcp", State: "open", Reason: "syn-ack", TTL: 64, Time: ts},
		{Addr: netip.MustParseAddr("198.18.0.1"), Port: 53, Proto: "udp", State: "closed", Reason: "port-unreach", TTL: 64, Time: ts},
		{Addr: netip.MustParseAddr("2001:2::7"), Port: 22, Proto: "tcp", State: "filtered", Reason: "admin-prohibited",
			From: netip.MustParseAddr("2001:2::1"), TTL: 63, Time: ts},
		{Addr: netip.MustParseAddr("198.18.0.9"), Proto: "icmp", State: "up", Reason: "echo-reply", TTL: 64, Time: ts},
	}
}

// TestReadResultsRoundTrip: what every appendable format writes reads back
// as the same pairs, header and trailer included, and a writer appending
// to it writes no second header.
func TestReadResultsRoundTrip(t *testing.T) {
	for _, format := range []string{"ndjson", "list", "csv", "human"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			rw, err := NewWriter(&buf, format)
			if err != nil {
				t.Fatal(err)
			}
			rs := readbackResults()
			for _, r := range rs[:2] {
				rw.Write(r)
			}
			rw.Close()
			first := buf.Len()
			aw, err := NewWriterAppend(&buf, format)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs[2:] {
				aw.Write(r)
			}
			aw.Flush() // no trailer: as a scan killed mid-way
			if head := strings.SplitN(buf.String()[first:], "\n", 2)[0]; strings.HasPrefix(head, "#masscan") || strings.HasPrefix(head, "ip,port") {
				t.Errorf("the appending writer wrote a header again: %q", head)
			}
			rb, err := Read(bytes.NewReader(buf.Bytes()), format)
			if err != nil {
				t.Fatalf("%v in:\n%s", err, buf.String())
			}
			if len(rb.Pairs) != len(rs) || rb.Whole != int64(buf.Len()) || rb.Size != rb.Whole {
				t.Errorf("read %d pairs, whole %d of %d bytes; want %d pairs, all %d bytes", len(rb.Pairs), rb.Whole, rb.Size, len(rs), buf.Len())
			}
			for _, r := range rs {
				if _, ok := rb.Pairs[KeyOf(r)]; !ok {
					t.Errorf("pair %v not read back", KeyOf(r))
				}
			}
			// A scan killed mid-write: the torn line is not a pair, and
			// Whole stops before it.
			torn := append(append([]byte{}, buf.Bytes()...), "198.18.0."...)
			rb, err = Read(bytes.NewReader(torn), format)
			if err != nil || rb.Whole != int64(buf.Len()) || rb.Size != int64(len(torn)) || len(rb.Pairs) != len(rs) {
				t.Errorf("torn line: %v, whole %d size %d pairs %d; want whole %d", err, rb.Whole, rb.Size, len(rb.Pairs), buf.Len())
			}
		})
	}
}

func TestReadResultsRefuses(t *testing.T) {
	tests := []struct {
		name, format, text, want string
	}{
		{"xml", "xml", "<nmaprun>\n", "--format xml cannot be read back"},
		{"unknown format", "yaml", "", `unknown --format "yaml"`},
		{"not ndjson", "ndjson", "{\"ip\":\"198.18.0.1\",\"port\":80,\"proto\":\"tcp\"}\nhello\n", `line 2 "hello" is not a ndjson result`},
		{"bad address", "list", "open tcp 80 198.18.0.300 1700000000\n", `line 1 "open tcp 80 198.18.0.300 1700000000" is not a list result`},
		{"bad protocol", "csv", "198.18.0.1,80,sctp,open,64,x\n", `protocol "sctp"`},
		{"bad port", "grepable", "Timestamp: 1\tHost: 198.18.0.1 ()\tPorts: 99999/open/tcp////\n", `port "99999"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.text), tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, format := range []string{"xml", "json", "grepable", "normal"} {
		if _, err := NewWriterAppend(&bytes.Buffer{}, format); err == nil {
			t.Errorf("a %s writer appends", format)
		}
	}
}

// TestReadWholeDocuments: the formats written whole (nmap's grepable,
// masscan's JSON array) read back as the pairs they hold, and the old
// masscan-style grepable and six-column csv still read.
func TestReadWholeDocuments(t *testing.T) {
	for _, format := range []string{"grepable", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, format)
			if err != nil {
				t.Fatal(err)
			}
			rs := readbackResults()
			for _, r := range rs {
				w.Write(r)
			}
			w.Close()
			rb, err := Read(bytes.NewReader(buf.Bytes()), format)
			if err != nil {
				t.Fatalf("%v in:\n%s", err, buf.String())
			}
			want := len(rs)
			if format == "grepable" {
				want-- // the echo reply is the host's Status line, not a port
			}
			if len(rb.Pairs) != want {
				t.Errorf("read %d pairs, want %d:\n%s", len(rb.Pairs), want, buf.String())
			}
			for _, r := range rs {
				if _, ok := rb.Pairs[KeyOf(r)]; !ok && r.Proto != "icmp" {
					t.Errorf("pair %v not read back", KeyOf(r))
				}
			}
		})
	}
	for _, tc := range []struct{ name, format, text string }{
		{"masscan-style grepable", "grepable", "Timestamp: 1700000000\tHost: 198.18.0.1 ()\tPorts: 80/open/tcp////\n"},
		{"six-column csv", "csv", "ip,port,proto,state,ttl,ts\n198.18.0.1,80,tcp,open,64,2023-11-14T22:13:20Z\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := Read(strings.NewReader(tc.text), tc.format)
			want := PairKey{Addr: netip.MustParseAddr("198.18.0.1"), Proto: 6, Port: 80}
			if err != nil || len(rb.Pairs) != 1 {
				t.Fatalf("%v, %d pairs", err, len(rb.Pairs))
			}
			if _, ok := rb.Pairs[want]; !ok {
				t.Errorf("pairs %v, want %v", rb.Pairs, want)
			}
		})
	}
}
