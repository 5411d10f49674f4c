package ringbuf

import (
	"sync/atomic"
	"testing"

	"github.com/xdpscan/xdpscan/internal/reorder"
)

// giveBack publishes, for each ring, the position of its oldest record
// still held by the merge (or all it read when none is held), and copies
// the held records out once they pin half of the ring.
func TestGiveBackStopsAtHeldRecords(t *testing.T) {
	const size = 1 << 12
	for _, tc := range []struct {
		name      string
		held      []uint64 // positions of records pushed in place, not released
		cons      uint64   // what the reader has read up to
		want      uint64   // the consumer position published
		wantSpill uint64
	}{
		{"nothing held", nil, 512, 512, 0},
		{"held from 256", []uint64{256, 384}, 512, 256, 0},
		{"held at exactly half", []uint64{1024}, 1024 + size/2, 1024, 0},
		{"held past half: copied out", []uint64{1000, 1100}, 1000 + size/2 + 8, 1000 + size/2 + 8, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, 2*size)
			r := &ring{consumerPage: make([]byte, 8), mask: size - 1, data: data, cons: tc.cons}
			m := &Multi[uint64]{rings: []*ring{r}}
			mg := reorder.New(2, 0, func(int, int64, []byte) {})
			mg.SetMemory(0, data)
			for i, pos := range tc.held {
				mg.PushAt(0, int64(100+i), pos, data[pos&r.mask:pos&r.mask+8])
			}
			m.giveBack(mg)
			if got := atomic.LoadUint64(r.consumerPos()); got != tc.want {
				t.Fatalf("consumer position %d, want %d", got, tc.want)
			}
			if st := mg.Stats(); st.Spilled != tc.wantSpill {
				t.Fatalf("spilled %d records, want %d", st.Spilled, tc.wantSpill)
			}
		})
	}
}
