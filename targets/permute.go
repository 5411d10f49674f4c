package targets

import "math/bits"

// Permutation is a seeded bijection of [0, n) computed in O(1) memory: a
// four-round Feistel network over the smallest even power of two >= n,
// cycle-walking values that fall outside [0, n) (masscan's approach). Each
// walk takes fewer than four steps on average.
type Permutation struct {
	n        uint64
	halfBits uint
	mask     uint64
	keys     [4]uint64
}

// NewPermutation returns the permutation of [0, n) for seed.
func NewPermutation(n, seed uint64) Permutation {
	p := Permutation{n: n}
	total := uint(bits.Len64(max(n-1, 1)))
	total += total & 1
	p.halfBits = max(total/2, 1)
	p.mask = 1<<p.halfBits - 1
	s := seed
	for i := range p.keys {
		s += 0x9e3779b97f4a7c15
		p.keys[i] = splitmix(s)
	}
	return p
}

// Len is n.
func (p Permutation) Len() uint64 { return p.n }

// At returns the element at position i (0 <= i < n).
func (p Permutation) At(i uint64) uint64 {
	x := i
	for {
		x = p.feistel(x)
		if x < p.n {
			return x
		}
	}
}

func (p Permutation) feistel(x uint64) uint64 {
	l, r := x>>p.halfBits, x&p.mask
	for _, k := range p.keys {
		l, r = r, l^(splitmix(r^k)&p.mask)
	}
	return l<<p.halfBits | r
}

func splitmix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
