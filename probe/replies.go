package probe

import (
	"strconv"
)

// Reply kinds, as enum reply_kind in bpf/include/scan_reply.h.
const (
	ReplyOpen     = 1
	ReplyClosed   = 2
	ReplyFiltered = 3
	ReplyAlive    = 4
)

// ICMPReason names an ICMP error as nmap's --reason does.
func ICMPReason(family, typ, code uint8) string {
	if family == 6 {
		switch {
		case typ == 1 && code == 4:
			return "port-unreach"
		case typ == 1 && code == 1:
			return "admin-prohibited"
		case typ == 1:
			return "unreach-code-" + strconv.Itoa(int(code))
		case typ == 3:
			return "time-exceeded"
		}
		return "icmpv6-type-" + strconv.Itoa(int(typ))
	}
	if typ == 11 {
		return "time-exceeded"
	}
	if typ != 3 {
		return "icmp-type-" + strconv.Itoa(int(typ))
	}
	switch code {
	case 0:
		return "net-unreach"
	case 1:
		return "host-unreach"
	case 2:
		return "proto-unreach"
	case 3:
		return "port-unreach"
	case 9, 10, 13:
		return "admin-prohibited"
	}
	return "unreach-code-" + strconv.Itoa(int(code))
}
