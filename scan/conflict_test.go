package scan

import (
	"net/netip"
	"testing"

	"github.com/xdpscan/xdpscan/targets"
)

func TestResolver(t *testing.T) {
	a := netip.MustParseAddr("198.18.0.7")
	open := Result{Addr: a, Port: 9999, Proto: "udp", State: StateOpen, Reason: "udp-response"}
	closed := Result{Addr: a, Port: 9999, Proto: "udp", State: StateClosed, Reason: "port-unreach"}
	dnsOpen := Result{Addr: a, Port: 53, Proto: "udp", State: StateOpen, Reason: "udp-response"}
	dnsClosed := Result{Addr: a, Port: 53, Proto: "udp", State: StateClosed, Reason: "port-unreach"}
	type in struct {
		r    Result
		bits int
	}
	tests := []struct {
		name          string
		answers       []in
		beforeFlush   []string // reasons printed as the answers arrive
		afterFlush    []string // reasons printed by flush
		conflicts     uint64
		weak, minBits int
	}{
		{name: "strong answer printed at once", answers: []in{{dnsOpen, 35}},
			beforeFlush: []string{"udp-response"}, minBits: 35},
		{name: "forged strong-looking answer first: the later conflict is counted, never printed",
			answers:     []in{{dnsClosed, 40}, {dnsOpen, 35}},
			beforeFlush: []string{"port-unreach"}, conflicts: 1, minBits: 40},
		{name: "weak answer held until the end", answers: []in{{open, 8}},
			afterFlush: []string{"udp-response;cookie-bits=8"}, weak: 1, minBits: 8},
		{name: "weak forged open loses to a later better-validated closed",
			answers:    []in{{open, 8}, {closed, 24}},
			afterFlush: []string{"port-unreach;cookie-bits=24;conflict"}, conflicts: 1, weak: 1, minBits: 24},
		{name: "weak answer replaced at once by a strong conflicting one",
			answers:     []in{{dnsOpen, 8}, {dnsClosed, 40}},
			beforeFlush: []string{"port-unreach;conflict"}, conflicts: 1, minBits: 40},
		{name: "a later weaker conflicting answer does not win",
			answers:    []in{{closed, 24}, {open, 8}},
			afterFlush: []string{"port-unreach;cookie-bits=24;conflict"}, conflicts: 1, weak: 1, minBits: 24},
		{name: "the same state again is no conflict and no second line",
			answers:     []in{{dnsOpen, 35}, {dnsOpen, 35}},
			beforeFlush: []string{"udp-response"}, minBits: 35},
	}
	for _, tc := range tests {
		for _, keying := range resolverKeyings {
			t.Run(tc.name+"/"+keying.name, func(t *testing.T) {
				var got []string
				var progress Progress
				rv := newResolver(8, &progress, func(r Result) { got = append(got, r.Reason) })
				keying.apply(rv)
				for _, a := range tc.answers {
					rv.add(a.r, a.bits)
				}
				if !equalStrings(got, tc.beforeFlush) {
					t.Fatalf("printed before the end %q, want %q", got, tc.beforeFlush)
				}
				got = nil
				rv.flush()
				if !equalStrings(got, tc.afterFlush) {
					t.Fatalf("printed at the end %q, want %q", got, tc.afterFlush)
				}
				var st Stats
				rv.finish(&st)
				if st.Conflicts != tc.conflicts || st.WeakResults != uint64(tc.weak) || st.MinCookieBits != tc.minBits {
					t.Fatalf("stats conflicts %d weak %d min bits %d, want %d %d %d", st.Conflicts, st.WeakResults, st.MinCookieBits,
						tc.conflicts, tc.weak, tc.minBits)
				}
				if n := progress.Replies.Load(); n != uint64(len(tc.beforeFlush)+len(tc.afterFlush)) {
					t.Fatalf("progress counts %d results, %d printed", n, len(tc.beforeFlush)+len(tc.afterFlush))
				}
			})
		}
	}
}

// resolverKeyings are the ways the resolver records printed pairs: by
// (address, port, proto) alone, and by probe index in the dense array
// and in the hash (printed.go). Every resolver test runs under each.
var resolverKeyings = []struct {
	name  string
	apply func(*resolver)
}{
	{"by key", func(*resolver) {}},
	{"by index, dense", func(rv *resolver) { rv.keyByIndex(resolverPairs()) }},
	{"by index, hash", func(rv *resolver) {
		rv.keyByIndex(resolverPairs())
		rv.states = &pairStates{hash: stateHash{slots: make([]uint64, 1)}} // grows from one slot
	}},
}

// resolverPairs is the pair space of the resolver tests' answers.
func resolverPairs() *seenSet {
	return newSeenSet(targets.NewRangeSet([]targets.Range{r4("198.18.0.0", "198.18.0.255")}),
		[]targets.Port{{Proto: targets.ProtoUDP, Num: 53}, {Proto: targets.ProtoUDP, Num: 9999}})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResolverConfirm(t *testing.T) {
	a := netip.MustParseAddr("198.18.0.7")
	open := Result{Addr: a, Port: 9999, Proto: "udp", State: StateOpen, Reason: "udp-response"}
	closed := Result{Addr: a, Port: 9999, Proto: "udp", State: StateClosed, Reason: "port-unreach"}
	tests := []struct {
		name        string
		confirm     *Result
		want        []string
		unconfirmed uint64
	}{
		{"the retry agrees: printed with both answers' bits", &open, []string{"udp-response;confirmed;cookie-bits=16"}, 0},
		{"no answer to the retry: left out", nil, nil, 1},
		{"the retry disagrees: left out, a conflict", &closed, nil, 1},
	}
	for _, tc := range tests {
		for _, keying := range resolverKeyings {
			t.Run(tc.name+"/"+keying.name, func(t *testing.T) {
				var got []string
				rv := newResolver(8, &Progress{}, func(r Result) { got = append(got, r.Reason) })
				keying.apply(rv)
				rv.requireConfirm = true
				rv.add(open, 8)
				if h := rv.heldUDP(); len(h) != 1 || h[0].Addr != a {
					t.Fatalf("held for a retry: %+v", h)
				}
				if tc.confirm != nil {
					rv.addConfirm(*tc.confirm, 8)
				}
				rv.flush()
				var st Stats
				rv.finish(&st)
				if !equalStrings(got, tc.want) || st.Unconfirmed != tc.unconfirmed {
					t.Fatalf("printed %q, unconfirmed %d; want %q, %d", got, st.Unconfirmed, tc.want, tc.unconfirmed)
				}
			})
		}
	}
}
