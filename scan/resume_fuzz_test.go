package scan

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadResume feeds arbitrary resume files to LoadResume: no panic, and
// nothing is accepted unless it is a resume file of this version whose
// checksum covers exactly what it holds (a file it accepts, written again,
// loads to the same content).
func FuzzLoadResume(f *testing.F) {
	good := &ResumeFile{Version: ResumeVersion, Args: []string{"-p", "80", "198.18.0.0/24"}, Seed: 7, Shards: 1,
		Ports: "80", Position: Position{Next: 7}}
	good.Checksum = good.checksum()
	f.Add(good.marshal())
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "r.resume")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := LoadResume(path)
		if err != nil {
			return
		}
		if s.Version != ResumeVersion || s.Checksum != s.checksum() {
			t.Fatalf("accepted version %d with checksum %q over content %q", s.Version, s.Checksum, s.checksum())
		}
	})
}
