package outfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// A sealed file put in place never replaces a file unless asked, and a
// refused name leaves both files whole.
func TestSealAndPlace(t *testing.T) {
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken")
	if err := os.WriteFile(taken, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := CreateBeside(taken, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := r.Seal(false); err != nil {
		t.Fatal(err)
	}
	if err := r.Place(taken, true); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("placing over a file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(taken); string(b) != "old" {
		t.Fatalf("the taken file holds %q", b)
	}
	free := filepath.Join(dir, "free")
	if err := r.Place(free, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(free); string(b) != "new" {
		t.Fatalf("the placed file holds %q", b)
	}
	// A ring replaces its own file when told to.
	r2, err := CreateBeside(free, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r2.Write([]byte("newer"))
	if err := r2.Seal(true); err != nil {
		t.Fatal(err)
	}
	if err := r2.Place(free, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(free); string(b) != "newer" {
		t.Fatalf("the replaced file holds %q", b)
	}
	// Discarded: nothing left beside.
	r3, err := CreateBeside(free, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r3.Seal(false)
	r3.Discard()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("%d entries in the directory, want taken and free", len(ents))
	}
	if err := SyncFS(dir); err != nil {
		t.Fatal(err)
	}
}
