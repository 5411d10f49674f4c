package kfloor

import (
	"testing"
)

func TestParseRelease(t *testing.T) {
	tests := []struct {
		name, release string
		want          Version
		wantErr       bool
	}{
		{"debian", "6.18.0-1-amd64", Version{6, 18}, false},
		{"plain", "5.15.0", Version{5, 15}, false},
		{"two parts", "5.9", Version{5, 9}, false},
		{"suffix on the minor", "5.18-rc3", Version{5, 18}, false},
		{"suffix glued to the minor", "4.19+", Version{4, 19}, false},
		{"no minor", "6", Version{}, true},
		{"not a number", "linux.x", Version{}, true},
		{"empty", "", Version{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRelease(tc.release)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseRelease(%q) = %v, %v; want %v, error %v", tc.release, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestFloors pins the table to the floors the code and docs state: a
// change here is a change of what xdpscan supports.
func TestFloors(t *testing.T) {
	tests := []struct {
		name string
		f    Feature
		want Version
	}{
		{"global functions", GlobalFunctions, Version{5, 6}},
		{"ring buffer", RingBuffer, Version{5, 8}},
		{"bpf_link XDP", XDPLink, Version{5, 9}},
		{"cpumap relay", CPUMapPrograms, Version{5, 9}},
		{"bpf_xdp_load_bytes", XDPLoadBytes, Version{5, 18}},
		{"live frames", LiveFrames, Version{5, 18}},
		{"long jumps", LongJumps, Version{6, 4}},
		{"clsact egress", ClsactBPF, Version{4, 5}},
		{"tcx", TCX, Version{6, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.f.Since != tc.want {
				t.Fatalf("%s since %v, want %v", tc.f.Name, tc.f.Since, tc.want)
			}
		})
	}
	if got := Floor(Programs...); got != (Version{5, 18}) {
		t.Fatalf("the programs' floor is %v, want 5.18", got)
	}
	if got := Floor(All...); got != (Version{6, 6}) {
		t.Fatalf("the newest floor is %v, want 6.6 (tcx, for capture -Q out; clsact below it)", got)
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		name string
		a, b Version
		want bool
	}{
		{"older minor", Version{5, 9}, Version{5, 18}, true},
		{"newer major", Version{6, 1}, Version{5, 18}, false},
		{"equal", Version{5, 18}, Version{5, 18}, false},
		{"older major", Version{4, 20}, Version{5, 0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Less(tc.b); got != tc.want {
				t.Fatalf("%v.Less(%v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}
