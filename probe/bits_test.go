package probe

import "testing"

func TestAnswerBits(t *testing.T) {
	tests := []struct {
		name         string
		proto        uint8
		quoted, ipv4 bool
		port         uint16
		want         int
	}{
		{"syn-ack", 6, false, true, 443, 32},
		{"icmp error quoting a SYN, IPv4", 6, true, true, 443, 48},
		{"icmp error quoting a SYN, IPv6 (flow label)", 6, true, false, 443, 48},
		{"echo reply", 1, false, true, 0, 32},
		{"dns answer", 17, false, true, 53, 8 + 27},
		{"ntp answer", 17, false, true, 123, 8 + 64},
		{"snmp answer", 17, false, true, 161, 8 + 30},
		{"generic udp answer: the port alone", 17, false, true, 9999, 8},
		{"port unreachable quoting a DNS probe, IPv4", 17, true, true, 53, 8 + 16 + 16},
		{"port unreachable quoting an empty probe, IPv4", 17, true, true, 9999, 8 + 16},
		{"port unreachable quoting an empty probe, IPv6", 17, true, false, 9999, 8 + 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AnswerBits(tc.proto, tc.quoted, tc.ipv4, tc.port, SourcePortBits(40000, 40255)); got != tc.want {
				t.Fatalf("AnswerBits = %d, want %d", got, tc.want)
			}
		})
	}
	if got := SourcePortBits(1, 65535); got != 15 {
		t.Fatalf("SourcePortBits(1, 65535) = %d, want 15", got)
	}
}
