package scan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestResumeChecksum: the checksum covers the content, not its layout, and
// any change of a value breaks it.
func TestResumeChecksum(t *testing.T) {
	s := &ResumeFile{Version: ResumeVersion, Args: []string{"--p=80", "198.18.0.0/24"}, Seed: 1<<64 - 1, Shards: 1,
		Ports: "80", Position: Position{Next: 7}}
	b := s.marshal()
	compact, _ := json.Marshal(s)
	tests := []struct {
		name string
		text string
		ok   bool
	}{
		{"as written", string(b), true},
		{"re-indented", string(compact), true},
		{"position changed", strings.Replace(string(b), `"next": 7`, `"next": 8`, 1), false},
		{"seed changed in its last digit", strings.Replace(string(b), "18446744073709551615", "18446744073709551614", 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := contentChecksum([]byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if (got == s.Checksum) != tc.ok {
				t.Errorf("checksum %s vs stored %s: want match %v", got, s.Checksum, tc.ok)
			}
		})
	}
}

// TestSafeAt: a checkpoint's position is the newest one sampled at least
// lag before: replies to the probes after it may still be coming.
func TestSafeAt(t *testing.T) {
	t0 := time.Now()
	c := &Checkpointer{Lag: 1500 * time.Millisecond}
	for i := range 10 {
		c.samples = append(c.samples, sample{t0.Add(time.Duration(i) * 500 * time.Millisecond), Position{Next: uint64(i * 100)}})
	}
	tests := []struct {
		at   time.Duration
		want uint64
		ok   bool
	}{
		{time.Second, 0, false},
		{1500 * time.Millisecond, 0, true},
		{2 * time.Second, 100, true},
		{2400 * time.Millisecond, 100, true},
		{10 * time.Second, 900, true},
	}
	for _, tc := range tests {
		pos, ok := c.SafeAt(t0.Add(tc.at))
		if ok != tc.ok || ok && pos.Next != tc.want {
			t.Errorf("safeAt(+%v) = %+v %v, want next %d %v", tc.at, pos, ok, tc.want, tc.ok)
		}
	}
}
