package loader_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// validAnswers are real answers to our probes, one of every kind the scan
// program accepts, in both families: TCP SYN-ACK and RST, echo reply, each
// UDP service's answer, and ICMP errors quoting each probe kind.
func validAnswers() [][]byte {
	var out [][]byte
	for _, fam := range []struct{ us, target netip.Addr }{{scanner4, target4}, {scanner6, target6}} {
		us, target := fam.us, fam.target
		c := cookie(us, target, 40001, 443)
		out = append(out,
			testpkt.Build(testpkt.Frame{Src: target, Dst: us, L4: testpkt.TCP(443, 40001, 7, c+1, "SA")}),
			testpkt.Build(testpkt.Frame{Src: target, Dst: us, L4: testpkt.TCP(443, 40001, 0, c+1, "RA")}))
		icmpProto := uint8(1)
		if us.Is6() {
			icmpProto = 58
		}
		ec := testKey.Cookie(us, target, icmpProto, 0, 0)
		if us.Is4() {
			out = append(out, testpkt.Build(testpkt.Frame{Src: target, Dst: us,
				L4: &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: uint16(ec >> 16), Seq: uint16(ec)}}))
		}
		for _, port := range udpServicePorts {
			sport, req := udpPayloadOf(us, target, port)
			out = append(out, testpkt.Build(testpkt.Frame{Src: target, Dst: us, L4: udpLayer(port, sport), Payload: svcAnswer(port, req, false)}))
		}
		typ, code := uint8(3), uint8(3)
		if us.Is6() {
			typ, code = 1, 4
		}
		for _, q := range []struct {
			proto        uint8
			sport, dport uint16
		}{{6, 40001, 443}, {icmpProto, 0, 0}, {17, 0, 53}, {17, 0, 123}, {17, 0, 161}, {17, 0, 9999}} {
			ip := sentProbe(us, target, q.proto, q.sport, q.dport)
			out = append(out, testpkt.Build(quotingErrorRaw(target, us, typ, code, ip[:ipHeaderLen(us)+8])))
		}
	}
	return out
}

// FuzzOneFieldForgery mutates one byte of a valid answer (XOR x at off)
// and checks that the scan program accepts the result only when the
// independent Go oracle (cookieValidates: the probe as the templates build
// it) still calls it a real answer: a mutation of a cookie-carrying field
// is a forgery and must be refused. The seeds cover every byte of every
// valid answer with one flipped bit, so a plain go test is exhaustive over
// single-byte positions; fuzzing explores other values.
func FuzzOneFieldForgery(f *testing.F) {
	answers := validAnswers()
	for i, a := range answers {
		f.Add(uint8(i), uint16(0), byte(0)) // unchanged: must be accepted
		for off := range a {
			f.Add(uint8(i), uint16(off), byte(1))
		}
	}
	s := loadScanUDP(f)
	f.Fuzz(func(t *testing.T, which uint8, off uint16, x byte) {
		a := answers[int(which)%len(answers)]
		frame := append([]byte(nil), a...)
		frame[int(off)%len(frame)] ^= x
		verdict, err := s.Program().Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatalf("BPF_PROG_RUN: %v", err)
		}
		drain(t, s)
		if verdict == xdpDrop && !cookieValidates(frame) {
			t.Fatalf("accepted a forgery: answer %d with byte %d ^ %#x: % x", int(which)%len(answers), int(off)%len(frame), x, frame)
		}
		if x == 0 && verdict != xdpDrop {
			t.Fatalf("refused valid answer %d: % x", int(which)%len(answers), frame)
		}
	})
}

// TestForgeryFuzzCorpusIsKept: the corpus directory holds the inputs past
// fuzzing found worth keeping (go test runs them with the seeds).
func TestForgeryFuzzCorpusIsKept(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzOneFieldForgery")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		t.Fatalf("corpus %s: %d files (%v)", dir, len(ents), err)
	}
}
