package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"go.uber.org/goleak"

	"github.com/xdpscan/xdpscan/probe"
	"github.com/xdpscan/xdpscan/route"
	"github.com/xdpscan/xdpscan/targets"
	"github.com/xdpscan/xdpscan/transmit"
)

type probeKey struct {
	addr        netip.Addr
	port, sport uint16
}

// recordingTx is a transmitter that decodes every frame it is handed (the
// real templates' bytes) and counts it; once the shared budget runs out it
// cancels the scan (a Ctrl-C) and sends nothing more.
type recordingTx struct {
	bufs   [][]byte
	sent   atomic.Uint64
	mu     *sync.Mutex
	got    map[probeKey]int
	budget *atomic.Int64
	cancel context.CancelFunc
}

func newRecordingTx(mu *sync.Mutex, got map[probeKey]int, budget *atomic.Int64, cancel context.CancelFunc) *recordingTx {
	t := &recordingTx{mu: mu, got: got, budget: budget, cancel: cancel}
	for i := 0; i < 64; i++ {
		t.bufs = append(t.bufs, make([]byte, probe.MaxFrame))
	}
	return t
}

func (t *recordingTx) Batch() int               { return len(t.bufs) }
func (t *recordingTx) Buffer(i int) []byte      { return t.bufs[i] }
func (t *recordingTx) Counts() (uint64, uint64) { return t.sent.Load(), 0 }
func (t *recordingTx) Close() error             { return nil }
func (t *recordingTx) Send(ctx context.Context, lens []int) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if t.budget.Add(-int64(len(lens))) < 0 {
		t.cancel()
		return context.Canceled // the batch is not sent: the walk stops before it
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, n := range lens {
		p := gopacket.NewPacket(t.bufs[i][:n], layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			return fmt.Errorf("frame %d is not IPv4 TCP", i)
		}
		t.got[probeKey{netip.AddrFrom4([4]byte(ip.DstIP.To4())), uint16(tcp.DstPort), uint16(tcp.SrcPort)}]++
	}
	t.sent.Add(uint64(len(lens)))
	return nil
}

// runSenders runs sendAll once with a budget of probes (-1: none), and
// returns the position it stopped at.
func runSenders(t *testing.T, cfg Config, got map[probeKey]int, budget int64) Position {
	t.Helper()
	var mu sync.Mutex
	b := &atomic.Int64{}
	if budget < 0 {
		budget = 1 << 62
	}
	b.Store(budget)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := &Progress{}
	newTx := func() (transmit.Sender, error) { return newRecordingTx(&mu, got, b, cancel), nil }
	first, _ := newTx()
	extra, err := openExtraSenders(cfg, newTx)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := sendAll(ctx, cfg, first, extra, progress)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if pp, ok := progress.Position(); ok && pp != pos {
		t.Fatalf("published position %+v, returned %+v", pp, pos)
	}
	if err := cfg.ValidPosition(pos); err != nil {
		t.Fatalf("position %+v: %v", pos, err)
	}
	// Through the resume file's JSON and back.
	b2, _ := json.Marshal(pos)
	var back Position
	if err := json.Unmarshal(b2, &back); err != nil || back != pos {
		t.Fatalf("position %s read back as %+v (%v)", b2, back, err)
	}
	return pos
}

// --senders N sends every probe exactly once: the probes of N senders,
// interrupted anywhere and resumed (any number of times, from one sender's
// position too), are the one-sender walk's, each once per pass.
func TestSendersSendEveryProbeExactlyOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := 0; trial < 40; trial++ {
		senders := 2 + rng.IntN(3)
		shards := uint64(1 + rng.IntN(2))
		cfg := Config{Targets: targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.1.44")}),
			Ports:   []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 80}, {Proto: targets.ProtoTCP, Num: 443}},
			SportLo: 40000, SportHi: 40000 + uint16(rng.IntN(8)), Seed: rng.Uint64(), Shards: shards, Shard: uint64(rng.IntN(int(shards))),
			Retries: rng.IntN(2), Rate: 1e9, Senders: senders, Key: probe.CookieKey{1, 2},
			Path: route.Path{SrcMAC: srcMAC, RouterMAC: dstMAC, Src: srcIP}}
		fromOne := trial%4 == 3 // the first run with one sender, resumed with N
		if trial%4 == 1 {
			// A walk in other slices than walkSlices (a resume file of
			// one position a sender), each resume with another --senders.
			cfg.Resume.Senders.N = 2 + rng.IntN(4)
		}
		name := fmt.Sprintf("trial %d: %d senders, shard %d/%d, %d retries, resumed from one sender %v, %d slices", trial, senders, cfg.Shard, shards, cfg.Retries, fromOne, cfg.slices())
		want := map[probeKey]int{}
		EachProbe(cfg, func(a netip.Addr, p targets.Port, sport uint16) error {
			want[probeKey{a, p.Num, sport}]++
			return nil
		})
		got := map[probeKey]int{}
		total := int64(cfg.TotalProbes())
		runs := 0
		for c := cfg; ; runs++ {
			if runs > 10 {
				t.Fatalf("%s: not done after %d resumes", name, runs)
			}
			budget := int64(-1)
			if runs < 3 {
				budget = rng.Int64N(total/2 + 1)
			}
			if fromOne && runs == 0 {
				c.Senders = 1
			}
			pos := runSenders(t, c, got, budget)
			if pos.Pass > uint64(cfg.Retries) {
				break
			}
			c = cfg
			c.Resume = pos
			if trial%4 == 1 {
				c.Senders = 1 + rng.IntN(4)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d distinct probes sent, want %d", name, len(got), len(want))
		}
		for k, n := range want {
			if got[k] != n {
				t.Fatalf("%s: probe %v sent %d times, want %d", name, k, got[k], n)
			}
		}
	}
}

// The senders' rates add up to the scan's exactly.
func TestSenderRatesAddUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate float64
		n    int
	}{{"even", 1e6, 2}, {"odd", 100001, 3}, {"tiny", 0.7, 4}, {"one", 5, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			sum := 0.0
			for k := 0; k < tc.n; k++ {
				sum += rateShare(tc.rate, k, tc.n)
			}
			if sum != tc.rate {
				t.Fatalf("shares add up to %v, want %v", sum, tc.rate)
			}
		})
	}
}

// A position in slices is the slices', not the senders': any --senders
// resumes it; a slice's position that is not one of its own is refused.
func TestSlicePositionResumesWithAnySenders(t *testing.T) {
	cfg := positionConfig(t, 1, 0, 0)
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	pos := composePositions([]Position{{Next: 10}, {Next: 5}}, n) // slice 0 at 10, slice 1 at 5
	for _, senders := range []int{1, 2, 3} {
		cfg.Senders = senders
		if err := cfg.ValidPosition(pos); err != nil {
			t.Errorf("--senders %d: a 2-slice position refused: %v", senders, err)
		}
	}
	bad := pos
	bad.Senders.Next[1] = 6 // an even position: slice 0's
	if err := cfg.ValidPosition(bad); err == nil || !strings.Contains(err.Error(), "positions of slice 1 of 2") {
		t.Errorf("slice 1 at slice 0's position: got %v", err)
	}
}
