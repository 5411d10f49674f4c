package output

import (
	"testing"
)

// FuzzParseNDJSON: `xdpscan merge` reads result lines from files a user
// hands it (kubectl logs with stderr mixed in, parts cut by a kill). No
// line may panic it, and a line it accepts has an address and one of the
// protocols the formats write.
func FuzzParseNDJSON(f *testing.F) {
	for _, s := range []string{
		`{"ip":"198.18.3.7","port":443,"proto":"tcp","state":"open","reason":"syn-ack","ttl":64,"ts":"2026-11-21T08:00:00.123456789Z"}`,
		`{"ip":"2001:2::7","port":0,"proto":"icmp","state":"up","reason":"echo-reply","ttl":64}`,
		`{"ip":"198.18.3.7","port":53,"proto":"udp","state":"filtered","reason":"host-unreachable","from":"198.18.0.1"}`,
		`{"xdpscan_part":{"shard":1,"shards":3,"seed":7}}`,
		`{"ip":"198.18.3.7","port":65536,"proto":"tcp"}`,
		`{"ip":"198.18.3.7"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if IsPartHeader(line) {
			ParsePartHeader(line)
			return
		}
		r, err := ParseNDJSON(line)
		if err != nil {
			return
		}
		if !r.Addr.IsValid() {
			t.Fatalf("accepted %q without an address", line)
		}
		switch r.Proto {
		case "tcp", "udp", "icmp":
		default:
			t.Fatalf("accepted %q with protocol %q", line, r.Proto)
		}
	})
}
