// Package loader loads xdpscan's XDP programs, configures them, attaches
// them to interfaces and reads their counters.
//
// Kernel floor: 5.9 (bpf_link XDP attachment, ring buffer). Loading needs
// CAP_BPF (or CAP_SYS_ADMIN) and attaching needs CAP_NET_ADMIN. A bpf_link
// detaches by itself when the process exits, even by SIGKILL, so a crashed
// xdpscan never leaves a program on an interface.
package loader
