package scan

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/xdpscan/xdpscan/probe"
)

// The kernel reports each (pair, state class) once: an open answer and a
// closed or filtered one for the same pair both reach user space, where the
// resolver below decides what is printed. Its contract:
//
//   - An answer proving at least probe.WeakBits keyed cookie bits is printed
//     as it arrives, once; a later conflicting answer for its pair is
//     counted (Stats.Conflicts) but never printed: it cannot validate better.
//   - An answer proving fewer (a UDP service that echoes nothing) is held
//     until the scan's end, because a blind forger could have hit its
//     cookie. A conflicting answer that proves more replaces it (printed at
//     once when it is strong); otherwise the first one stays. Held results
//     are printed after the wait, their reason marked ";cookie-bits=N".
//   - A result whose pair also drew a conflicting answer has ";conflict"
//     appended to its reason.
//   - With --confirm, each held UDP pair is probed again after the wait
//     under a fresh cookie; it is printed only if the retry's answer gives
//     the same state (reason ";confirmed", its bits the sum of both), and
//     counted in Stats.Unconfirmed otherwise.
//
// So a pair is printed once, when it is final, and a forged answer that
// arrives first never hides a better-validated real one.

type pairKey struct {
	addr  netip.Addr
	port  uint16
	proto string
}

type heldAnswer struct {
	r                   Result
	bits, confirmBits   int
	conflict, confirmed bool
}

type resolver struct {
	// mu: the receiver adds answers while Run reads the held pairs for
	// --confirm.
	mu             sync.Mutex
	requireConfirm bool
	emit           func(Result)
	progress       *Progress
	sportBits      int
	printed        map[pairKey]State // pairs outside pairs' index space (printed.go)
	held           map[pairKey]*heldAnswer
	// pairs, if set, gives each of the scan's pairs its probe index, by
	// which states records the printed ones (printed.go); nil: all in
	// printed.
	pairs  *seenSet
	states *pairStates
	order  []pairKey // held pairs in arrival order

	conflicts, weak, unconfirmed uint64
	minBits                      int
}

func newResolver(sportBits int, progress *Progress, emit func(Result)) *resolver {
	return &resolver{emit: emit, progress: progress, sportBits: sportBits,
		printed: map[pairKey]State{}, held: map[pairKey]*heldAnswer{}}
}

// keyByIndex makes the resolver record printed pairs by their index in
// pairs' space (the scan's seen sets share it).
func (rv *resolver) keyByIndex(pairs *seenSet) {
	rv.pairs, rv.states = pairs, newPairStates(pairs.pairs)
}

// add takes one validated answer proving bits keyed bits.
func (rv *resolver) add(r Result, bits int) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.addLocked(rv.ref(pairKey{r.Addr, r.Port, r.Proto}), r, bits)
}

// addLocked is add for pair k, with rv.mu held.
func (rv *resolver) addLocked(k pairRef, r Result, bits int) {
	if s, ok := rv.printedState(k); ok {
		if s != r.State {
			rv.conflicts++
		}
		return
	}
	// Held answers are the weak ones, usually none: no lookup then.
	if len(rv.held) > 0 {
		if h, ok := rv.held[k.key]; ok {
			if h.r.State != r.State {
				rv.conflicts++
				h.conflict = true
			}
			if bits > h.bits {
				h.r, h.bits = r, bits
			}
			if h.bits >= probe.WeakBits {
				delete(rv.held, k.key)
				rv.print(k, h.r, h.bits, h.conflict)
			}
			return
		}
	}
	if bits < probe.WeakBits {
		rv.held[k.key] = &heldAnswer{r: r, bits: bits}
		rv.order = append(rv.order, k.key)
		return
	}
	rv.print(k, r, bits, false)
}

func (rv *resolver) print(k pairRef, r Result, bits int, conflict bool) {
	rv.setPrinted(k, r.State)
	if bits < probe.WeakBits {
		r.Reason += fmt.Sprintf(";cookie-bits=%d", bits)
		rv.weak++
	}
	if conflict {
		r.Reason += ";conflict"
	}
	if rv.minBits == 0 || bits < rv.minBits {
		rv.minBits = bits
	}
	countResult(rv.progress, r)
	rv.emit(r)
}

// addConfirm takes an answer to a confirming retry.
func (rv *resolver) addConfirm(r Result, bits int) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.addConfirmLocked(rv.ref(pairKey{r.Addr, r.Port, r.Proto}), r, bits)
}

// addConfirmLocked is addConfirm for pair k, with rv.mu held.
func (rv *resolver) addConfirmLocked(k pairRef, r Result, bits int) {
	h, ok := rv.held[k.key]
	if !ok {
		if s, ok := rv.printedState(k); ok && s != r.State {
			rv.conflicts++
		}
		return
	}
	if h.r.State != r.State {
		rv.conflicts++
		h.conflict = true
		return
	}
	h.confirmed, h.confirmBits = true, bits
}

// heldUDP is the held UDP pairs, for their confirming retries.
func (rv *resolver) heldUDP() []Result {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var out []Result
	for _, k := range rv.order {
		if h, ok := rv.held[k]; ok && h.r.Proto == "udp" {
			out = append(out, h.r)
		}
	}
	return out
}

// flush prints the held answers at the scan's end, in arrival order.
func (rv *resolver) flush() {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for _, k := range rv.order {
		h, ok := rv.held[k]
		if !ok {
			continue
		}
		if rv.requireConfirm && h.r.Proto == "udp" {
			if !h.confirmed {
				rv.unconfirmed++
				continue
			}
			h.r.Reason += ";confirmed"
			h.bits += h.confirmBits
		}
		rv.print(rv.ref(k), h.r, h.bits, h.conflict)
	}
	rv.held, rv.order = map[pairKey]*heldAnswer{}, nil
}

// finish copies the resolver's figures into st.
func (rv *resolver) finish(st *Stats) {
	st.Conflicts, st.WeakResults, st.MinCookieBits, st.Unconfirmed = rv.conflicts, rv.weak, rv.minBits, rv.unconfirmed
}

// countResult counts a printed result in progress.
func countResult(progress *Progress, r Result) {
	switch r.State {
	case StateOpen:
		progress.Open.Add(1)
	case StateClosed:
		progress.Closed.Add(1)
	case StateFiltered:
		progress.Filtered.Add(1)
	case StateUp:
		progress.Up.Add(1)
	}
	progress.Replies.Add(1)
	if r.Proto == "udp" {
		progress.UDPAnswered.Add(1)
	}
}
