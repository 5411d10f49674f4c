package capture

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/xdpscan/xdpscan/internal/testpkt"
)

// partial is frame with its L4 checksum (at off) replaced by the
// pseudo-header sum Linux leaves in a CHECKSUM_PARTIAL packet.
func partial(frame []byte, ipv6 bool, proto byte, l4off, off int) []byte {
	f := append([]byte(nil), frame...)
	var s uint32
	var l4len int // from the IP header: gopacket pads short frames
	if ipv6 {
		s, l4len = sum16(f[14+8:14+40], 0), int(binary.BigEndian.Uint16(f[14+4:]))
	} else {
		s, l4len = sum16(f[14+12:14+20], 0), int(binary.BigEndian.Uint16(f[14+2:]))-20
	}
	s += uint32(proto) + uint32(l4len)
	binary.BigEndian.PutUint16(f[l4off+off:], fold(s))
	return f
}

func TestFinishChecksum(t *testing.T) {
	a := netip.MustParseAddr
	tcp4 := testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: testpkt.TCP(22, 40000, 1, 2, "SA"), Payload: []byte("abc")})
	udp6 := testpkt.Build(testpkt.Frame{Src: a("2001:2::7"), Dst: a("2001:2::1"), L4: &layers.UDP{SrcPort: 53, DstPort: 40000}, Payload: make([]byte, 17)})
	udp4 := testpkt.Build(testpkt.Frame{Src: a("198.18.0.7"), Dst: a("198.19.0.1"), L4: &layers.UDP{SrcPort: 53, DstPort: 40000}, Payload: make([]byte, 30)})
	tcp4Partial := partial(tcp4, false, 6, 34, 16)
	wrong := append([]byte(nil), tcp4...)
	wrong[34+16] ^= 0x55
	for _, tc := range []struct {
		name    string
		in      []byte
		wireLen int
		want    []byte
		changed bool
	}{
		{"partial tcp4 finished", tcp4Partial, len(tcp4Partial), tcp4, true},
		{"partial udp6 finished", partial(udp6, true, 17, 54, 6), len(udp6), udp6, true},
		{"partial udp4 finished", partial(udp4, false, 17, 34, 6), len(udp4), udp4, true},
		{"right checksum left", tcp4, len(tcp4), tcp4, false},
		{"wrong but not partial: as sent", wrong, len(wrong), wrong, false},
		{"cut by the snaplen: left", tcp4Partial[:40], len(tcp4Partial), tcp4Partial[:40], false},
		{"short frame", tcp4Partial[:10], 10, tcp4Partial[:10], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := append([]byte(nil), tc.in...)
			if got := finishChecksum(f, tc.wireLen); got != tc.changed {
				t.Fatalf("changed %v, want %v", got, tc.changed)
			}
			if string(f) != string(tc.want) {
				t.Fatalf("frame % x\nwant  % x", f, tc.want)
			}
			if tc.changed {
				if ok, err := testpkt.ChecksumsMatch(f); err != nil || !ok {
					t.Fatalf("gopacket: checksums match %v, %v", ok, err)
				}
			}
		})
	}
}
