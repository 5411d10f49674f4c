package loader_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/internal/bpftest"
	"github.com/xdpscan/xdpscan/internal/kfloor"
	"github.com/xdpscan/xdpscan/internal/testpkt"
	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/probe"
)

func loadSender(t *testing.T) (*loader.Scan, *loader.Sender) {
	t.Helper()
	bpftest.Require(t, kfloor.LiveFrames)
	scan, err := loader.LoadScan(loader.ScanConfig{
		SourceIPv4: scanner4, SourceIPv6: scanner6, SourcePortLo: 40000, SourcePortHi: 40255,
		CookieKey: [2]uint64(testKey), RingBytes: 1 << 16, DedupEntries: 1 << 12, SendSlots: 8, SendSenders: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scan.Close() })
	s, err := scan.Sender()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return scan, s
}

// TestSenderTurnsSlotsIntoFrames runs the scan program's transmitter the
// way live-frames mode does, one run per frame, but without live frames, so
// the frame each run would transmit comes back: it must be the slot's bytes
// at the slot's length, without the metadata, whatever the page held before
// (live-frames mode recycles pages unrewritten); a run past the batch sends
// nothing, and transmitter runs are not counted as received packets.
func TestSenderTurnsSlotsIntoFrames(t *testing.T) {
	scan, s := loadSender(t)
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	// 198.19.0.1.40001 > 198.18.0.7.443: Flags [S], seq cookie, win 1024, length 0
	syn := probe.NewSYN(mac(1), mac(2), scanner4, 40001, testKey)
	// 198.19.0.1.40001 > 198.18.0.7.53: 0+ A? (DNS probe, 54 bytes of UDP)
	dns := probe.NewUDP(mac(1), mac(2), scanner4, 40001, 40001, probe.PayloadFor(53), testKey)
	// 2001:2::1 > 2001:2::1:7: ICMP6, echo request
	echo6 := probe.NewEcho(mac(1), mac(2), scanner6, testKey)
	lens := []int{
		syn.Fill(s.Frame(0), target4, 443),
		dns.Fill(s.Frame(1), target4, 53),
		echo6.Fill(s.Frame(2), target6),
		5, // shorter than an Ethernet header: refused
	}
	want := make([][]byte, len(lens))
	for i, l := range lens {
		want[i] = bytes.Clone(s.Frame(i)[:l])
	}
	s.SetBatch(lens)

	data, ctx := s.RunInput(1)
	for i := loader.SendMetaLen; i < len(data); i++ {
		data[i] = 0xee // a recycled page's old bytes
	}
	run := func() (uint32, []byte) {
		out := make([]byte, len(data)+64)
		opts := ebpf.RunOptions{Data: data, Context: ctx, DataOut: out}
		verdict, err := scan.Program().Run(&opts)
		if err != nil {
			t.Fatal(err)
		}
		return verdict, opts.DataOut
	}
	for i := range 3 {
		verdict, frame := run()
		if verdict != xdpTX {
			t.Fatalf("slot %d: verdict %d, want XDP_TX", i, verdict)
		}
		if !bytes.Equal(frame, want[i]) {
			t.Errorf("slot %d: sent\n% x\nwant\n% x", i, frame, want[i])
		}
	}
	if verdict, _ := run(); verdict != xdpDrop {
		t.Errorf("slot of 5 bytes: verdict %d, want XDP_DROP", verdict)
	}
	if s.Refused() != 1 {
		t.Errorf("refused %d slots, want 1", s.Refused())
	}
	if verdict, _ := run(); verdict != xdpDrop {
		t.Errorf("run past the batch: verdict %d, want XDP_DROP", verdict)
	}
	c, err := scan.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 0 {
		t.Errorf("transmitter runs counted as %d received packets", c.Packets)
	}
}

// TestSenderNeedsItsMagic: a received frame carrying metadata that is not
// this program's magic (another XDP program's, or a forged one) is parsed
// as a packet, never sent from a slot.
func TestSenderNeedsItsMagic(t *testing.T) {
	scan, s := loadSender(t)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	syn := probe.NewSYN(mac, mac, scanner4, 40001, testKey)
	s.SetBatch([]int{syn.Fill(s.Frame(0), target4, 443)})
	data, ctx := s.RunInput(1)
	forged := bytes.Clone(data)
	forged[0] ^= 0x80 // another magic
	// 198.18.0.7.443 > 198.19.0.1.40001: Flags [S.] (not a reply to anything sent)
	reply := testpkt.Build(testpkt.Frame{Src: target4, Dst: scanner4, L4: testpkt.TCP(443, 40001, 1, 2, "SA")})
	copy(forged[loader.SendMetaLen:], reply)
	ctx.DataEnd = uint32(loader.SendMetaLen + len(reply))
	opts := ebpf.RunOptions{Data: forged[:ctx.DataEnd], Context: ctx}
	verdict, err := scan.Program().Run(&opts)
	if err != nil {
		t.Fatal(err)
	}
	if verdict != xdpPass {
		t.Errorf("forged magic: verdict %d, want XDP_PASS (parsed, bad cookie)", verdict)
	}
	c, err := scan.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 1 || c.BadCookie != 1 {
		t.Errorf("forged magic: counted %d packets, %d bad cookies; want 1 and 1", c.Packets, c.BadCookie)
	}
}

// TestSendersShareTheProgram: with SendSenders 2, a run carrying sender
// 1's index sends sender 1's slot and moves sender 1's state, never
// sender 0's; an index past the senders sends nothing.
func TestSendersShareTheProgram(t *testing.T) {
	scan, s0 := loadSender(t)
	s1, err := scan.SenderAt(1)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if _, err := scan.SenderAt(2); err == nil {
		t.Error("SenderAt(2) of 2 senders: want an error")
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	syn := probe.NewSYN(mac, mac, scanner4, 40001, testKey)
	s0.SetBatch([]int{syn.Fill(s0.Frame(0), target4, 22)})
	n1 := syn.Fill(s1.Frame(0), target4, 443)
	s1.SetBatch([]int{n1})
	want1 := bytes.Clone(s1.Frame(0)[:n1])
	run := func(s *loader.Sender, mutate func([]byte)) (uint32, []byte) {
		data, ctx := s.RunInput(1)
		data = bytes.Clone(data)
		mutate(data)
		out := make([]byte, len(data)+64)
		opts := ebpf.RunOptions{Data: data, Context: ctx, DataOut: out}
		verdict, err := scan.Program().Run(&opts)
		if err != nil {
			t.Fatal(err)
		}
		return verdict, opts.DataOut
	}
	if verdict, frame := run(s1, func([]byte) {}); verdict != xdpTX || !bytes.Equal(frame, want1) {
		t.Fatalf("sender 1: verdict %d, frame\n% x\nwant XDP_TX and\n% x", verdict, frame, want1)
	}
	if s1.Handed() != 1 || s0.Handed() != 0 {
		t.Errorf("handed: sender 0 %d, sender 1 %d; want 0 and 1", s0.Handed(), s1.Handed())
	}
	if verdict, _ := run(s1, func(d []byte) { d[8] = 2 }); verdict != 0 {
		t.Errorf("sender index 2 of 2: verdict %d, want XDP_ABORTED (0)", verdict)
	}
}
