package netdev

import (
	"net"
	"strings"
	"testing"
)

// TestLoopbackCounters: a datagram over lo shows in lo's counters, sent and
// received, and lo is no veth.
func TestLoopbackCounters(t *testing.T) {
	l, err := Open("lo")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before, err := l.Read()
	if err != nil {
		t.Fatal(err)
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const n = 5
	for range n {
		if _, err := tx.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	after, err := l.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Sub(before); d.RxPackets < n || d.TxPackets < n {
		t.Fatalf("lo counted %+v over %d datagrams, want at least %d each way", d, n, n)
	}
	if l.IsVeth() || IsVeth("lo") {
		t.Fatal("lo taken for a veth")
	}
}

func TestErrorsNameTheInterface(t *testing.T) {
	tests := []struct {
		name, want string
		open       func() (*Link, error)
	}{
		{"no such interface", "read counters of xdpscan-none0", func() (*Link, error) { return Open("xdpscan-none0") }},
		{"no such namespace", "open namespace xdpscan-lz-none", func() (*Link, error) { return OpenIn("xdpscan-lz-none", "lo") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.open()
			if err == nil {
				defer l.Close()
				_, err = l.Read()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
