package capture

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// corpusTime is the first packet's timestamp; packets follow 1.001001 ms
// apart, so every -t form has digits to get wrong.
var corpusTime = time.Unix(1700000000, 123456789)

func corpusPcap(t *testing.T) (string, []testpkt.Named) {
	t.Helper()
	corpus := testpkt.Corpus()
	path := filepath.Join(t.TempDir(), "corpus.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, n := range corpus {
		ci := gopacket.CaptureInfo{Timestamp: corpusTime.Add(time.Duration(i) * 1001001 * time.Nanosecond), CaptureLength: len(n.Frame), Length: len(n.Frame)}
		if err := w.WritePacket(ci, n.Frame); err != nil {
			t.Fatal(err)
		}
	}
	return path, corpus
}

// splitPackets splits tcpdump's output into one string per packet: a
// packet's text starts at a line that starts with its timestamp.
func splitPackets(out string, starts func(line string) bool) []string {
	var pkts []string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if starts(line) || len(pkts) == 0 {
			pkts = append(pkts, line)
		} else {
			pkts[len(pkts)-1] += "\n" + line
		}
	}
	return pkts
}

// TestTextMatchesTcpdump is the golden test: tcpdump's own text for the
// corpus (every frame kind the tests build) next to the printer's, for
// each of tcpdump's printing flags. The text must be the same, byte for
// byte, except where tcpdump goes on to decode an application protocol
// (HTTP, SSH) or the GRE payload, which xdpscan does not: there xdpscan's
// text must be exactly tcpdump's up to where that decoding starts, so
// every field before it (addresses, ports, flags, seq/ack, window,
// options, lengths, ICMP types) is the same.
func TestTextMatchesTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (`make deps`)")
	}
	path, corpus := corpusPcap(t)
	tests := []struct {
		name  string
		flags []string
		opts  TextOptions
	}{
		{"-nn", nil, TextOptions{}},
		{"-v", []string{"-v"}, TextOptions{Verbose: 1}},
		{"-vv", []string{"-vv"}, TextOptions{Verbose: 2}},
		{"-e", []string{"-e"}, TextOptions{Link: true}},
		{"-q", []string{"-q"}, TextOptions{Quick: true}},
		{"-x", []string{"-x"}, TextOptions{Hex: 1}},
		{"-xx", []string{"-xx"}, TextOptions{Hex: 2}},
		{"-X", []string{"-X"}, TextOptions{Hex: 1, ASCII: true}},
		{"-XX", []string{"-XX"}, TextOptions{Hex: 2, ASCII: true}},
		{"-e -v -X", []string{"-e", "-v", "-X"}, TextOptions{Link: true, Verbose: 1, Hex: 1, ASCII: true}},
		{"-S", []string{"-S"}, TextOptions{Absolute: true}},
		{"-t", []string{"-t"}, TextOptions{Time: 1}},
		{"-tt", []string{"-tt"}, TextOptions{Time: 2}},
		{"-ttt", []string{"-ttt"}, TextOptions{Time: 3}},
		{"-tttt", []string{"-tttt"}, TextOptions{Time: 4}},
		{"-ttttt", []string{"-ttttt"}, TextOptions{Time: 5}},
		{"nano", []string{"--time-stamp-precision", "nano"}, TextOptions{Nano: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("tcpdump", append([]string{"-nn", "-r", path}, tc.flags...)...)
			cmd.Env = append(os.Environ(), "TZ=UTC")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tcpdump: %v\n%s", err, stderr.String())
			}
			tc.opts.Location = time.UTC
			pr := NewPrinter(tc.opts)
			var ours []string
			for i, n := range corpus {
				ts := corpusTime.Add(time.Duration(i) * 1001001 * time.Nanosecond).UnixNano()
				ours = append(ours, strings.TrimRight(string(pr.Append(nil, ts, len(n.Frame), n.Frame)), "\n"))
			}
			starts := func(line string) bool { return !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "    ") }
			theirs := splitPackets(string(out), starts)
			if len(theirs) != len(corpus) {
				t.Fatalf("tcpdump printed %d packets, the corpus has %d:\n%s", len(theirs), len(corpus), out)
			}
			same := 0
			for i := range corpus {
				if ours[i] == theirs[i] {
					same++
					continue
				}
				// tcpdump decoding further: ours must be its prefix (the
				// hex dumps after them the same).
				ourText, ourHex := splitHex(ours[i])
				text, hex := splitHex(theirs[i])
				if rest, ok := strings.CutPrefix(text, ourText); ok && ourHex == hex && appDecode(corpus[i].Name, rest) {
					continue
				}
				t.Errorf("%s:\n tcpdump: %q\n xdpscan: %q", corpus[i].Name, theirs[i], ours[i])
			}
			t.Logf("%d of %d packets byte for byte the same as tcpdump %s", same, len(corpus), strings.Join(tc.flags, " "))
		})
	}
}

// appDecode says whether rest, what tcpdump prints past xdpscan's text
// for the frame named, is a decoder xdpscan does not have.
func appDecode(name, rest string) bool {
	switch name {
	case "tcp psh-ack http":
		return strings.HasPrefix(rest, ": HTTP") // -v: "HTTP, length: 31" and the request's lines
	case "tcp ack with timestamps":
		return strings.HasPrefix(rest, ": SSH")
	case "gre":
		return strings.HasPrefix(rest, "\n\tgre-proto")
	case "lldp":
		return strings.HasPrefix(rest, "\n\tEnd TLV")
	}
	return false
}

// splitHex splits a packet's text from its -x/-X dump.
func splitHex(s string) (text, hex string) {
	if i := strings.Index(s, "\n\t0x0000:"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// TestTextNeverPanics: every corpus frame cut at every length, and with
// random bytes flipped, prints without a panic in every mode.
func TestTextNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, o := range []TextOptions{{}, {Verbose: 2, Link: true, Hex: 2, ASCII: true}, {Quick: true}} {
		pr := NewPrinter(o)
		for _, n := range testpkt.Corpus() {
			for cut := 0; cut <= len(n.Frame); cut++ {
				pr.Append(nil, 0, len(n.Frame), n.Frame[:cut])
			}
			for range 30 {
				m := append([]byte(nil), n.Frame...)
				for range 1 + rng.IntN(4) {
					m[rng.IntN(len(m))] = byte(rng.Uint32())
				}
				pr.Append(nil, 0, len(m), m)
			}
		}
	}
}

// BenchmarkPrinter is the decoder goroutine's cost per packet, over the
// corpus (go test ./capture -run '^$' -bench Printer -benchmem).
func BenchmarkPrinter(b *testing.B) {
	corpus := testpkt.Corpus()
	pr := NewPrinter(TextOptions{})
	var line []byte
	b.ResetTimer()
	for i := range b.N {
		f := corpus[i%len(corpus)].Frame
		line = pr.Append(line[:0], int64(i)*1000, len(f), f)
	}
}
