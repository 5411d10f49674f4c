package probe

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/dchest/siphash"
)

// TestSipHashWordsMatchesReference checks the word-based SipHash against an
// independent byte-oriented implementation on the same message bytes.
func TestSipHashWordsMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		k0, k1 := rng.Uint64(), rng.Uint64()
		var m [5]uint64
		for j := range m {
			m[j] = rng.Uint64()
		}
		for _, n := range []int{2, 5} {
			msg := make([]byte, 8*n)
			for j := 0; j < n; j++ {
				binary.LittleEndian.PutUint64(msg[8*j:], m[j])
			}
			want := siphash.Hash(k0, k1, msg)
			if got := sipHash24Words(k0, k1, &m, n); got != want {
				t.Fatalf("n=%d key=%x,%x: got %x, want %x", n, k0, k1, got, want)
			}
		}
	}
}

func TestCookieDependsOnEveryField(t *testing.T) {
	k := CookieKey{1, 2}
	src, dst := [4]byte{198, 19, 0, 1}, [4]byte{198, 18, 0, 7}
	base := k.Cookie4(src, dst, 6, 40000, 80)
	variants := map[string]uint32{
		"src":   k.Cookie4([4]byte{198, 19, 0, 2}, dst, 6, 40000, 80),
		"dst":   k.Cookie4(src, [4]byte{198, 18, 0, 8}, 6, 40000, 80),
		"proto": k.Cookie4(src, dst, 17, 40000, 80),
		"sport": k.Cookie4(src, dst, 6, 40001, 80),
		"dport": k.Cookie4(src, dst, 6, 40000, 81),
		"key":   CookieKey{1, 3}.Cookie4(src, dst, 6, 40000, 80),
	}
	for name, c := range variants {
		if c == base {
			t.Errorf("changing %s did not change the cookie", name)
		}
	}
}

func BenchmarkCookie4(b *testing.B) {
	k := CookieKey{1, 2}
	src, dst := [4]byte{198, 19, 0, 1}, [4]byte{198, 18, 0, 7}
	b.ReportAllocs()
	var sink uint32
	for i := 0; b.Loop(); i++ {
		sink += k.Cookie4(src, dst, 6, 40000, uint16(i))
	}
	_ = sink
}
