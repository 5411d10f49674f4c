package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func partLine(shard, shards int, seed, ports, sha string) string {
	return `{"xdpscan_part":{"targets":{"addresses":256,"ranges":1,"summary":"198.18.0.0/24","sha256":"` + sha +
		`"},"ports":"` + ports + `","seed":` + seed + `,"shard":` + itoa(int32(shard)) + `,"shards":` + itoa(int32(shards)) + "}}\n"
}

func resultLine(ip string, port, state string) string {
	return `{"ip":"` + ip + `","port":` + port + `,"proto":"tcp","state":"` + state + `","reason":"syn-ack","ttl":64,"ts":"2026-01-01T00:00:00Z"}` + "\n"
}

// TestMerge: parts of one scan merge into each pair once, sorted; parts of
// different scans are refused naming the difference; missing and doubled
// shards are named by number.
func TestMerge(t *testing.T) {
	const sha = "aa"
	p0 := partLine(0, 3, "7", "22,80", sha) + resultLine("198.18.0.9", "80", "open") + "xdpscan: 2 probes ...\n" + resultLine("198.18.0.1", "22", "open")
	p1 := partLine(1, 3, "7", "22,80", sha) + resultLine("198.18.0.5", "22", "open")
	p2 := partLine(2, 3, "7", "22,80", sha) + resultLine("198.18.0.2", "80", "open")
	tests := []struct {
		name      string
		parts     []string
		wantErr   string // "" : no error
		wantCode  int
		wantIPs   []string
		wantNotes []string
	}{
		{"complete", []string{p0, p1, p2}, "", 0, []string{"198.18.0.1", "198.18.0.2", "198.18.0.5", "198.18.0.9"}, nil},
		{"all in one stream (kubectl logs)", []string{p2 + p0 + p1}, "", 0, []string{"198.18.0.1", "198.18.0.2", "198.18.0.5", "198.18.0.9"}, nil},
		{"missing shard 1", []string{p0, p2}, "shard(s) 1 of 0-2 missing", 1, []string{"198.18.0.1", "198.18.0.2", "198.18.0.9"}, nil},
		{"shard 2 twice", []string{p0, p1, p2, p2}, "", 0, []string{"198.18.0.1", "198.18.0.2", "198.18.0.5", "198.18.0.9"}, []string{"shard 2 given 2 times"}},
		{"other seed", []string{p0, partLine(1, 3, "8", "22,80", sha)}, "seed 8 here, 7 there", 2, nil, nil},
		{"other ports", []string{p0, partLine(1, 3, "7", "22,443", sha)}, "ports 22,443 here, 22,80 there", 2, nil, nil},
		{"other targets", []string{p0, partLine(1, 3, "7", "22,80", "bb")}, "targets", 2, nil, nil},
		{"other shard count", []string{p0, partLine(1, 4, "7", "22,80", sha)}, "4 shards here, 3 there", 2, nil, nil},
		{"no header", []string{resultLine("198.18.0.1", "22", "open")}, "not the NDJSON output of a sharded scan", 2, nil, nil},
		{"broken result", []string{partLine(0, 1, "7", "22", sha) + `{"ip":"nope","port":22,"proto":"tcp"}` + "\n"}, `ip "nope"`, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var args []string
			out := filepath.Join(dir, "merged.list")
			args = append(args, "-o", out, "--format", "list")
			for i, p := range tt.parts {
				f := filepath.Join(dir, "part"+itoa(int32(i)))
				if err := os.WriteFile(f, []byte(p), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, f)
			}
			stderr := captureStderr(t, func() error {
				err := runMerge(args)
				code := 0
				if err != nil {
					code = 1
					if ee, ok := err.(*exitError); ok && ee.code != 1 {
						code = ee.code
					}
					if tt.wantErr == "" || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("error %v: want %q", err, tt.wantErr)
					}
				} else if tt.wantErr != "" {
					t.Errorf("no error: want %q", tt.wantErr)
				}
				if code != tt.wantCode {
					t.Errorf("exit status %d: want %d", code, tt.wantCode)
				}
				return nil
			})
			for _, n := range tt.wantNotes {
				if !strings.Contains(stderr, n) {
					t.Errorf("stderr %q: want %q", stderr, n)
				}
			}
			b, err := os.ReadFile(out)
			if tt.wantIPs == nil {
				if err == nil {
					t.Errorf("refused merge wrote %s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ips []string
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if f := strings.Fields(line); len(f) == 5 {
					ips = append(ips, f[3])
				}
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("merged %v: want %v", ips, tt.wantIPs)
			}
		})
	}
}

func captureStderr(t *testing.T, f func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan []byte)
	go func() {
		b := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				done <- b
				return
			}
		}
	}()
	f()
	os.Stderr = old
	w.Close()
	return string(<-done)
}
