// Package loader loads xdpscan's XDP programs, configures them, attaches
// them to interfaces and reads their counters.
//
// Kernel floor: 5.18 (bpf_xdp_load_bytes and bpf_xdp_get_buff_len, which the
// programs use to stay loadable without CAP_PERFMON; bpf_link XDP attachment
// 5.9, ring buffer 5.8, global functions 5.6; the send relay's cpumap
// programs 5.9 and live frames 5.18: the table is internal/kfloor).
// Loading needs CAP_BPF (or CAP_SYS_ADMIN) and attaching needs
// CAP_NET_ADMIN; CAP_PERFMON is not needed: without it the
// verifier refuses adding a register to a packet pointer, NULL checks of
// packet pointers, pointer subtraction and map-value adds whose paths
// disagree, and the programs do none of these (bpf/include/parse.h,
// counters.h, shape.h; the translated filter, filter.ErrNeedsHelper;
// TestProgramsLoadWithDocumentedCapabilities). A bpf_link
// detaches by itself when the process exits, even by SIGKILL, so a crashed
// xdpscan never leaves a program on an interface.
package loader
