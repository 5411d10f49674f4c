package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" when valid, else a part of the error
	}{
		{"default", "default", ""},
		{"letters digits hyphen", "vd-12-ab", ""},
		{"digits first", "1bench", ""},
		{"at the limit", strings.Repeat("a", MaxNameLen), ""},
		{"empty", "", "empty"},
		{"over the limit", strings.Repeat("a", MaxNameLen+1), "at most 32"},
		{"path traversal", "x/../../../some/victim", `byte 2 ('/')`},
		{"dot dot", "..", `byte 1 ('.')`},
		{"newline", "vd\nxdpscan-evil", `byte 3 ('\n')`},
		{"space", "vd x", "byte 3"},
		{"upper case", "Vd", "byte 1"},
		{"underscore", "vd_x", "byte 3"},
		{"leading hyphen", "-vd", "byte 1"},
		{"NUL", "vd\x00", "byte 3"},
		{"non-ASCII", "vdé", "byte 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidName(tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ValidName(%q) = %v, want ok", tc.in, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ValidName(%q) = %v, want an error with %q", tc.in, err, tc.want)
			}
		})
	}
}

// TestStateFilesStayInStateDir: no name reaches a file outside StateDir,
// whichever function it goes through (down once deleted any *.json as root).
func TestStateFilesStayInStateDir(t *testing.T) {
	root := t.TempDir()
	StateDir = filepath.Join(root, "state")
	t.Cleanup(func() { StateDir = "/run/xdpscan" })
	if err := os.MkdirAll(filepath.Join(root, "some"), 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "some", "victim.json")
	content := `{"config":{"name":"victim"},"serve_pid":1}`
	if err := os.WriteFile(victim, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// From StateDir, testbed-x/../../some/victim.json is the victim.
	evil := "x/../../some/victim"
	if got := filepath.Clean(StatePath(evil)); got != victim {
		t.Fatalf("the test's premise is wrong: StatePath(%q) = %s, not %s", evil, got, victim)
	}
	if err := RemoveState(evil); err == nil {
		t.Error("RemoveState accepted a name with slashes")
	}
	if _, err := ReadState(evil); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("ReadState(%q) = %v, want the name refused", evil, err)
	}
	if err := WriteState(UpState{Config: Config{Name: evil}}); err == nil {
		t.Error("WriteState accepted a name with slashes")
	}
	if HasState(evil) {
		t.Error("HasState found a state file through a name with slashes")
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != content {
		t.Fatalf("victim file changed: %q, %v", b, err)
	}

	// A valid name round-trips, and a file recording another name is refused.
	if err := WriteState(UpState{Config: Config{Name: "vd-ok"}, ServePID: 1}); err != nil {
		t.Fatal(err)
	}
	if !HasState("vd-ok") {
		t.Fatal("HasState misses the state just written")
	}
	if st, err := ReadState("vd-ok"); err != nil || st.Config.Name != "vd-ok" {
		t.Fatalf("ReadState = %+v, %v", st, err)
	}
	if err := os.WriteFile(StatePath("vd-other"), []byte(`{"config":{"name":"vd-ok"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState("vd-other"); err == nil || !strings.Contains(err.Error(), `records testbed "vd-ok"`) {
		t.Fatalf("ReadState of a file recording another name = %v", err)
	}
	if err := RemoveState("vd-ok"); err != nil || HasState("vd-ok") {
		t.Fatalf("RemoveState: %v (still there: %v)", err, HasState("vd-ok"))
	}
	if err := RemoveState("vd-ok"); err != nil {
		t.Fatalf("RemoveState of a missing file: %v", err)
	}
}
