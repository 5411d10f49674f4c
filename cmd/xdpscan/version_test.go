package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// TestFloorLines: `xdpscan version` says, for each floor of the table,
// whether the running kernel reaches it.
func TestFloorLines(t *testing.T) {
	tests := []struct {
		name    string
		running kfloor.Version
		err     error
		wantNo  []string // features the kernel lacks, by name
	}{
		{"new kernel", kfloor.Version{Major: 6, Minor: 18}, nil, nil},
		{"6.6 has tcx", kfloor.Version{Major: 6, Minor: 6}, nil, nil},
		{"6.4 has long jumps, not tcx", kfloor.Version{Major: 6, Minor: 4}, nil, []string{kfloor.TCX.Name}},
		{"exactly the programs' floor: no long jumps", kfloor.Version{Major: 5, Minor: 18}, nil, []string{kfloor.LongJumps.Name, kfloor.TCX.Name}},
		{"5.15 lacks the 5.18 features", kfloor.Version{Major: 5, Minor: 15}, nil,
			[]string{kfloor.XDPLoadBytes.Name, kfloor.LiveFrames.Name, kfloor.LongJumps.Name, kfloor.TCX.Name}},
		{"5.8 lacks bpf_link XDP too", kfloor.Version{Major: 5, Minor: 8}, nil,
			[]string{kfloor.XDPLink.Name, kfloor.CPUMapPrograms.Name, kfloor.XDPLoadBytes.Name, kfloor.LiveFrames.Name, kfloor.LongJumps.Name, kfloor.TCX.Name}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := floorLines(tc.running, tc.err)
			if len(lines) != len(kfloor.All) {
				t.Fatalf("%d lines, want one per floor (%d):\n%s", len(lines), len(kfloor.All), strings.Join(lines, "\n"))
			}
			var no []string
			for i, l := range lines {
				f := kfloor.All[i]
				if !strings.HasPrefix(l, "floor   "+f.Since.String()) || !strings.Contains(l, f.Name) {
					t.Errorf("line %q does not name floor %s for %s", l, f.Since, f.Name)
				}
				if strings.Contains(l, " no (this is "+tc.running.String()+")") {
					no = append(no, f.Name)
				} else if !strings.Contains(l, " yes ") {
					t.Errorf("line %q says neither yes nor no", l)
				}
			}
			if strings.Join(no, "|") != strings.Join(tc.wantNo, "|") {
				t.Errorf("lacks %q, want %q", no, tc.wantNo)
			}
		})
	}
	t.Run("unknown version", func(t *testing.T) {
		lines := floorLines(kfloor.Version{}, errors.New("kernel release \"x\": want MAJOR.MINOR..."))
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "floors  unknown: kernel release") {
			t.Fatalf("lines %q, want one saying the version is unknown and why", lines)
		}
	})
}
