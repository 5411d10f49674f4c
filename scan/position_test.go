package scan

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/xdpscan/xdpscan/targets"
)

func positionConfig(t *testing.T, shards, shard uint64, retries int) Config {
	t.Helper()
	r, err := targets.ParseTarget("198.18.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Targets: targets.NewRangeSet([]targets.Range{r}), Ports: []targets.Port{{Proto: targets.ProtoTCP, Num: 22}, {Proto: targets.ProtoTCP, Num: 80}},
		Rate: 1e9, Shards: shards, Shard: shard, Retries: retries, SportLo: 40000, SportHi: 40255}
}

func TestValidPosition(t *testing.T) {
	tests := []struct {
		name          string
		shards, shard uint64
		retries       int
		pos           Position
		want          string // "" for valid
	}{
		{"start", 1, 0, 0, Position{}, ""},
		{"middle", 1, 0, 0, Position{Next: 300}, ""},
		{"last", 1, 0, 0, Position{Next: 511}, ""},
		{"done", 1, 0, 2, Position{Pass: 3}, ""},
		{"second pass", 1, 0, 2, Position{Pass: 2, Next: 5}, ""},
		{"shard's own", 3, 1, 0, Position{Next: 7}, ""},
		{"pass 99", 1, 0, 0, Position{Pass: 99}, "position pass 99 is not one of this scan's: it has passes 0-0 (--retries 0)"},
		{"past the end, not at a pass start", 1, 0, 0, Position{Pass: 1, Next: 1}, "position pass 1"},
		{"next 2^64-1", 1, 0, 0, Position{Next: 1<<64 - 1}, "position next 18446744073709551615 is not one of this scan's: it has 512 probe positions per pass (0-511)"},
		{"next = n", 1, 0, 0, Position{Next: 512}, "512 probe positions"},
		{"another shard's", 3, 1, 0, Position{Next: 8}, "position next 8 is not one of this scan's: it has positions of shard 1 of 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := positionConfig(t, tc.shards, tc.shard, tc.retries).ValidPosition(tc.pos)
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidPosition(%+v) = %v, want %q", tc.pos, err, tc.want)
			}
		})
	}
}

// TestPublishedPosition: the position read while the walk sends is always
// one the walk really stood at (never a torn pair of words), never goes
// back, is valid, and ends at the end.
func TestPublishedPosition(t *testing.T) {
	cfg := positionConfig(t, 1, 0, 3)
	n := cfg.Targets.Len() * uint64(len(cfg.Ports))
	progress := &Progress{}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last Position
		for {
			select {
			case <-done:
				return
			default:
			}
			pos, ok := progress.Position()
			if !ok {
				continue
			}
			if err := cfg.ValidPosition(pos); err != nil {
				t.Errorf("published %+v: %v", pos, err)
				return
			}
			if pos.Pass < last.Pass || pos.Pass == last.Pass && pos.Next < last.Next {
				t.Errorf("position went back: %+v after %+v", pos, last)
				return
			}
			last = pos
		}
	}()
	end, err := walkProbes(context.Background(), cfg, progress, 1, 7, func(b []probeRef) (int, error) { return len(b), nil })
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	final, ok := progress.Position()
	want := Position{Pass: uint64(cfg.Retries) + 1}
	if !ok || final != want || end != want {
		t.Errorf("walk ended at %+v, published %+v; want %+v (%d probes a pass)", end, final, want, n)
	}
}
