// Package ringtest reads what a program under test left in its ring
// buffer, for tests that run programs with BPF_PROG_RUN.
package ringtest

import (
	"context"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpscan/xdpscan/ringbuf"
)

// Drain returns every record of type T waiting in ring.
func Drain[T any](t testing.TB, ring *ebpf.Map) []T {
	t.Helper()
	var out []T
	run(t, ring, func(c *ringbuf.Consumer[T], done context.Context) error {
		return c.Run(done, func(b []T) { out = append(out, b...) })
	})
	return out
}

// DrainRecords hands fn every record waiting in ring: a T followed by
// bytes of its own (fn must copy what it keeps).
func DrainRecords[T any](t testing.TB, ring *ebpf.Map, fn func(*T, []byte)) {
	t.Helper()
	run(t, ring, func(c *ringbuf.Consumer[T], done context.Context) error { return c.RunRecords(done, fn) })
}

func run[T any](t testing.TB, ring *ebpf.Map, read func(*ringbuf.Consumer[T], context.Context) error) {
	t.Helper()
	c, err := ringbuf.New[T](ring, ringbuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A cancelled context: the consumer drains what is there and returns.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := read(c, done); err != nil {
		t.Fatal(err)
	}
}
