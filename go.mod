module github.com/xdpscan/xdpscan

go 1.25.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.47.0
)

require (
	github.com/dchest/siphash v1.2.3 // indirect
	github.com/gopacket/gopacket v1.7.7 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.58.0 // indirect
)

tool github.com/cilium/ebpf/cmd/bpf2go
