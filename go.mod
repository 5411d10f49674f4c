module github.com/xdpscan/xdpscan

go 1.25.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/dchest/siphash v1.2.3
	github.com/gopacket/gopacket v1.7.7
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.55.0
	golang.org/x/sys v0.47.0
	golang.org/x/term v0.43.0
)

tool github.com/cilium/ebpf/cmd/bpf2go
