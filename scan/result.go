package scan

import (
	"net/netip"

	"sync/atomic"
	"time"

	"github.com/xdpscan/xdpscan/loader"
	"github.com/xdpscan/xdpscan/transmit"
)

// State is what a reply proved: open (SYN-ACK, a UDP reply), closed (RST,
// ICMP port unreachable), filtered (another ICMP error: see
// Result.Reason) or up (echo reply). The strings are the output's words.
type State string

const (
	StateOpen     State = "open"
	StateClosed   State = "closed"
	StateFiltered State = "filtered"
	StateUp       State = "up"
)

// RxConnect is Stats.RxMode of a connect scan: the kernel's own sockets.
const RxConnect loader.RxMode = "connect"

// Result is one (address, port) that answered.
type Result struct {
	Addr  netip.Addr
	Port  uint16 // 0 for ICMP echo
	Proto string // "tcp", "udp" or "icmp"
	State State
	// Reason says what proved State, in nmap's words: syn-ack, reset,
	// udp-response, port-unreach, echo-reply, host-unreach, admin-prohibited...
	Reason string
	// From is who sent the reply when it is not Addr (a router's ICMP error).
	From netip.Addr
	TTL  uint8
	Time time.Time
}

// Progress is read by the status line while the scan runs.
type Progress struct {
	loader.Running                                   // the XDP program's counters (duplicates, losses)
	Sent, Total, Replies, Open, Closed, Filtered, Up atomic.Uint64
	UDPAnswered                                      atomic.Uint64 // UDP pairs with any answer
	TxErrors                                         atomic.Uint64 // mirrors the transmitter's failed sends for the status line
	position                                         positionCell  // see Position
	senders                                          atomic.Pointer[senderCells]
}

// Stats are a scan's final figures (the --stats-json object).
type Stats struct {
	// Part is which scan this is, and which shard of it (inline: targets,
	// ports, seed, shard, shards).
	Part
	ProbesSent  uint64  `json:"probes_sent"`
	ProbesTotal uint64  `json:"probes_total"`
	SendPPS     float64 `json:"send_pps"`
	Replies     uint64  `json:"replies"`
	Open        uint64  `json:"open"`
	Closed      uint64  `json:"closed"`
	// FilteredICMP is the pairs an ICMP error (other than port unreachable
	// to a UDP probe) called filtered: listed, with the reason.
	FilteredICMP uint64 `json:"filtered_icmp"`
	// Up is the hosts that answered an echo request.
	Up uint64 `json:"up"`
	// Filtered is the pairs probed that never answered (not listed).
	Filtered uint64 `json:"filtered"`
	// UDPNoReply is the UDP pairs among them: open|filtered in nmap's
	// words (a service that ignored the payload, a firewall, or a target's
	// ICMP rate limit). Unsharded scans only.
	UDPNoReply uint64 `json:"udp_no_reply"`
	Duplicates uint64 `json:"duplicates"`
	// Conflicts is the answers that contradicted an earlier one for the
	// same pair (open against closed or filtered): see scan/conflict.go.
	Conflicts uint64 `json:"conflicts"`
	// WeakResults is the printed results resting on fewer than
	// probe.WeakBits keyed cookie bits (reason ";cookie-bits=N"): UDP
	// services that echo nothing. MinCookieBits is the fewest any printed
	// result rests on.
	WeakResults   uint64 `json:"weak_results"`
	MinCookieBits int    `json:"min_cookie_bits,omitempty"`
	// Unconfirmed is the weak UDP results --confirm left out: the retry
	// under a fresh cookie got no answer of the same state.
	Unconfirmed   uint64        `json:"unconfirmed,omitempty"`
	InvalidCookie uint64        `json:"invalid_cookie"`
	RingLost      uint64        `json:"ring_lost"`
	TxErrors      uint64        `json:"tx_errors"`
	ElapsedS      float64       `json:"elapsed_s"`
	SendS         float64       `json:"send_s"`
	RxMode        loader.RxMode `json:"rx_mode"`
	TxMode        transmit.Mode `json:"tx_mode,omitempty"`
	// TxRelayCPUS is the CPU seconds of the --tx-relay-cpu kernel thread:
	// the transmit, and on veth the target's receive path, which runs in
	// the transmitting thread's softirq. Not part of this process's time.
	TxRelayCPUS float64 `json:"tx_relay_cpu_s,omitempty"`
	// Per CPU (index = CPU id), XDP receive: the packets the scan
	// program saw and its ring reserve failures; Senders, the sending
	// threads (--senders).
	RxPerCPU       []uint64 `json:"rx_packets_per_cpu,omitempty"`
	RingLostPerCPU []uint64 `json:"ring_lost_per_cpu,omitempty"`
	// Rings is the ring buffers the replies were read from (XDP receive).
	Rings   *RingChoice `json:"rings,omitempty"`
	Senders int         `json:"senders,omitempty"`
	XDPMode string      `json:"xdp_mode"`
	// RxHook says where replies were taken when not at the XDP hook
	// (XDPMode empty): TC ingress, beside an XDP program already attached.
	RxHook      string `json:"rx_hook,omitempty"`
	Interface   string `json:"interface"`
	Interrupted bool   `json:"interrupted"`
	// Resume is where an interrupted scan stopped sending.
	Resume *Position `json:"resume,omitempty"`
	// Connect holds the connect scan's own figures.
	Connect *ConnectStats `json:"connect,omitempty"`

	// DuplicatesUserSpace is the part of Duplicates (the replies not
	// printed because their pair already was) that the kernel's table let
	// through, an evicted pair or two CPUs racing, and the exact set in
	// user space caught (seen.go).
	DuplicatesUserSpace uint64 `json:"duplicates_user_space"`

	// TxResent is, with --tx xdp, the frames sent again because the
	// driver refused frames of their call (transmit/xdpresend.go), and
	// TxRefused the refusals it counted: none of them is lost.
	TxResent  uint64 `json:"tx_resent,omitempty"`
	TxRefused uint64 `json:"tx_refused,omitempty"`
}
