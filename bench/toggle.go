package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/internal/clock"
	"github.com/xdpscan/xdpscan/internal/netdev"
	"github.com/xdpscan/xdpscan/loader"
)

// ToggleOptions is one run of attach/detach windows on a link that a flood
// keeps busy: the program attached for a window, detached for the next,
// and so on, each window's receive rate read from the link's counters.
//
// On this VM the flood's own rate drifts by a third over seconds with
// nothing changing (host contention, not reported as steal time), so runs
// of a whole flood with and without a capture compare two drifts. Windows
// a fraction of a second long, each compared with the detached windows on
// either side of it, see the program's cost through the drift.
type ToggleOptions struct {
	Iface   string
	Mode    loader.Mode
	Program *ebpf.Program // nil: attach nothing, the method's control
	// TCIngress attaches Program (a TC program) to the TC ingress hook
	// instead of XDP: where capture --mode auto takes received packets.
	TCIngress bool
	Pairs     int           // attached windows, each between two detached ones
	Window    time.Duration // how long each window counts
	Settle    time.Duration // after each attach or detach, before counting
	// Ready is called once the flood is seen and the first window starts.
	Ready func()
}

// ToggleWindow is one counted window.
type ToggleWindow struct {
	Attached bool    `json:"attached"`
	Packets  uint64  `json:"packets"`
	Seconds  float64 `json:"seconds"`
}

// PPS is the window's receive rate.
func (w ToggleWindow) PPS() float64 {
	if w.Seconds <= 0 {
		return 0
	}
	return float64(w.Packets) / w.Seconds
}

// ToggleResult is every window, in order: detached, attached, detached, ...
type ToggleResult struct {
	Mode    string         `json:"mode"` // as the kernel attached the program
	Windows []ToggleWindow `json:"windows"`
}

// Kept is, for each attached window, its rate as a percentage of the mean
// rate of the detached windows before and after it.
func (r ToggleResult) Kept() []float64 {
	var kept []float64
	for i := 1; i+1 < len(r.Windows); i++ {
		w := r.Windows[i]
		before, after := r.Windows[i-1], r.Windows[i+1]
		if !w.Attached || before.Attached || after.Attached {
			continue
		}
		if base := (before.PPS() + after.PPS()) / 2; base > 0 {
			kept = append(kept, 100*w.PPS()/base)
		}
	}
	return kept
}

// floodWait bounds how long Toggle waits for the flood to reach the link.
const floodWait = 10 * time.Second

// Toggle runs o.Pairs attached windows between detached ones on o.Iface in
// the current namespace. It ends early, without the unfinished pair, when
// the flood stops (a window sees under 1% of the first one's packets), and
// the program is detached whatever happens.
func Toggle(ctx context.Context, o ToggleOptions) (ToggleResult, error) {
	var res ToggleResult
	if o.Pairs < 1 || o.Window <= 0 {
		return res, fmt.Errorf("toggle: %d pairs of %s windows: use at least 1 pair of a positive window", o.Pairs, o.Window)
	}
	counters, err := netdev.Open(o.Iface)
	if err != nil {
		return res, err
	}
	defer counters.Close()
	sample := func() (uint64, time.Time, error) {
		s, err := counters.Read()
		return s.RxPackets, time.Now(), err
	}
	if err := waitForFlood(ctx, sample); err != nil {
		return res, fmt.Errorf("toggle on %s: %w", o.Iface, err)
	}
	if o.Ready != nil {
		o.Ready()
	}
	count := func(attached bool) (ToggleWindow, error) {
		n0, t0, err := sample()
		if err != nil {
			return ToggleWindow{}, err
		}
		if err := clock.Sleep(ctx, o.Window); err != nil {
			return ToggleWindow{}, err
		}
		n1, t1, err := sample()
		return ToggleWindow{Attached: attached, Packets: n1 - n0, Seconds: t1.Sub(t0).Seconds()}, err
	}
	floodOver := func(w ToggleWindow) bool {
		return len(res.Windows) > 0 && w.Packets*100 < res.Windows[0].Packets
	}
	first, err := count(false)
	if err != nil {
		return res, err
	}
	res.Windows = append(res.Windows, first)
	for range o.Pairs {
		on, err := attachedWindow(ctx, o, count)
		if err != nil {
			return res, err
		}
		res.Mode = on.mode
		if err := clock.Sleep(ctx, o.Settle); err != nil {
			return res, err
		}
		off, err := count(false)
		if err != nil {
			return res, err
		}
		if floodOver(on.window) || floodOver(off) {
			break
		}
		res.Windows = append(res.Windows, on.window, off)
	}
	return res, nil
}

type attached struct {
	window ToggleWindow
	mode   string
}

// attachedWindow attaches the program, counts one window after it settles,
// and detaches it.
func attachedWindow(ctx context.Context, o ToggleOptions, count func(bool) (ToggleWindow, error)) (attached, error) {
	mode := "none"
	switch {
	case o.Program != nil && o.TCIngress:
		att, err := loader.AttachIngress(o.Program, o.Iface, "")
		if err != nil {
			return attached{}, err
		}
		defer att.Close()
		mode = string(att.Hook) + " ingress"
	case o.Program != nil:
		att, err := loader.Attach(o.Program, o.Iface, o.Mode)
		if err != nil {
			return attached{}, err
		}
		defer att.Close()
		mode = string(att.Mode)
	}
	if err := clock.Sleep(ctx, o.Settle); err != nil {
		return attached{}, err
	}
	w, err := count(true)
	return attached{window: w, mode: mode}, err
}

// waitForFlood returns once the link's receive counter moves.
func waitForFlood(ctx context.Context, sample func() (uint64, time.Time, error)) error {
	n0, _, err := sample()
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(floodWait); time.Now().Before(deadline); {
		if err := clock.Sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
		n, _, err := sample()
		if err != nil {
			return err
		}
		if n > n0 {
			return nil
		}
	}
	return errors.New("no packets received in " + floodWait.String() + ": start the flood first")
}
