package scan

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/xdpscan/xdpscan/probe"
	"golang.org/x/sys/unix"
)

func TestConnectWorkersFitTheDescriptorLimit(t *testing.T) {
	tests := []struct {
		name          string
		asked         int
		nofile        uint64
		inUse, want   int
		wantErrSubstr string
	}{
		{name: "default under a big limit", nofile: 1 << 20, inUse: 10, want: 2048},
		{name: "asked under a big limit", asked: 100, nofile: 1 << 20, inUse: 10, want: 100},
		{name: "limit 256", nofile: 256, inUse: 8, want: 216},
		{name: "asked more than the limit allows", asked: 5000, nofile: 1024, inUse: 8, want: 984},
		{name: "no room at all", nofile: 40, inUse: 8, wantErrSubstr: "no room"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connectWorkers(tc.asked, tc.nofile, tc.inUse)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("got %d, %v; want an error with %q", got, err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestClassifyDialError(t *testing.T) {
	base := Result{Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Proto: "tcp"}
	opErr := func(e error) error {
		return &net.OpError{Op: "dial", Net: "tcp4", Err: os.NewSyscallError("connect", e)}
	}
	tests := []struct {
		name         string
		err          error
		state, reson string
		fails        bool
	}{
		{"refused", opErr(unix.ECONNREFUSED), "closed", "reset", false},
		{"host unreachable", opErr(unix.EHOSTUNREACH), "filtered", "host-unreach", false},
		{"net unreachable", opErr(unix.ENETUNREACH), "filtered", "net-unreach", false},
		{"prohibited", opErr(unix.EACCES), "filtered", "admin-prohibited", false},
		{"timeout", context.DeadlineExceeded, "", "", false},
		{"deadline", opErr(os.ErrDeadlineExceeded), "", "", false},
		{"out of descriptors", opErr(unix.EMFILE), "", "", true},
		{"out of local ports", opErr(unix.EADDRNOTAVAIL), "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := classifyDialError(base, tc.err)
			if (err != nil) != tc.fails || string(r.State) != tc.state || r.Reason != tc.reson {
				t.Fatalf("got %q/%q, %v; want %q/%q, fails=%v", r.State, r.Reason, err, tc.state, tc.reson, tc.fails)
			}
			if tc.fails && !errors.Is(err, tc.err.(*net.OpError).Err.(*os.SyscallError).Err) {
				t.Fatalf("error %v lost its errno", err)
			}
		})
	}
}

// TestParseRecvErr decodes IP_RECVERR and IPV6_RECVERR control messages as
// the kernel lays them out: struct sock_extended_err, then the offender's
// sockaddr_in or sockaddr_in6.
func TestParseRecvErr(t *testing.T) {
	build := func(origin, typ, code uint8, offender netip.Addr) []byte {
		ee := unix.SockExtendedErr{Errno: uint32(unix.ECONNREFUSED), Origin: origin, Type: typ, Code: code}
		data := make([]byte, unsafe.Sizeof(ee)+28)
		copy(data, unsafe.Slice((*byte)(unsafe.Pointer(&ee)), unsafe.Sizeof(ee)))
		sa := data[unsafe.Sizeof(ee):]
		level, typ2 := int32(unix.IPPROTO_IP), int32(unix.IP_RECVERR)
		if offender.Is4() {
			binary.NativeEndian.PutUint16(sa, unix.AF_INET)
			copy(sa[4:8], offender.AsSlice())
		} else {
			binary.NativeEndian.PutUint16(sa, unix.AF_INET6)
			copy(sa[8:24], offender.AsSlice())
			level, typ2 = unix.IPPROTO_IPV6, unix.IPV6_RECVERR
		}
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ2
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	tests := []struct {
		name              string
		origin, typ, code uint8
		offender          string
		family            uint8
		reason            string
	}{
		{"port unreachable", unix.SO_EE_ORIGIN_ICMP, 3, 3, "198.18.0.7", 4, "port-unreach"},
		{"admin prohibited", unix.SO_EE_ORIGIN_ICMP, 3, 13, "198.19.0.254", 4, "admin-prohibited"},
		{"ICMPv6 port unreachable", unix.SO_EE_ORIGIN_ICMP6, 1, 4, "2001:2::7", 6, "port-unreach"},
		{"ICMPv6 admin prohibited from a router", unix.SO_EE_ORIGIN_ICMP6, 1, 1, "2001:2:0:ffff::2", 6, "admin-prohibited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := netip.MustParseAddr(tc.offender)
			ee, from := parseRecvErr(build(tc.origin, tc.typ, tc.code, want))
			if ee == nil || ee.Type != tc.typ || ee.Code != tc.code || ee.Origin != tc.origin || from != want {
				t.Fatalf("%+v from %v", ee, from)
			}
			if r := probe.ICMPReason(tc.family, ee.Type, ee.Code); r != tc.reason {
				t.Fatalf("reason %q, want %q", r, tc.reason)
			}
		})
	}
	if ee, _ := parseRecvErr([]byte{1, 2, 3}); ee != nil {
		t.Fatalf("garbage decoded as %+v", ee)
	}
}

func FuzzParseRecvErr(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, oob []byte) {
		ee, from := parseRecvErr(oob)
		if ee == nil && from.IsValid() {
			t.Fatal("an offender without an error")
		}
	})
}
