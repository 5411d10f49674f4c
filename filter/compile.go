package filter

/*
#cgo linux LDFLAGS: -lpcap
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <pcap/pcap.h>

// xdpscan_compile compiles expr for Ethernet frames into prog, or copies
// libpcap's message into errbuf (PCAP_ERRBUF_SIZE bytes) and returns -1.
static int xdpscan_compile(const char *expr, int snaplen, struct bpf_program *prog, char *errbuf) {
	pcap_t *p = pcap_open_dead(DLT_EN10MB, snaplen);
	if (p == NULL) {
		strncpy(errbuf, "pcap_open_dead failed", PCAP_ERRBUF_SIZE - 1);
		errbuf[PCAP_ERRBUF_SIZE - 1] = 0;
		return -1;
	}
	int rc = pcap_compile(p, prog, expr, 1, PCAP_NETMASK_UNKNOWN);
	if (rc < 0) {
		strncpy(errbuf, pcap_geterr(p), PCAP_ERRBUF_SIZE - 1);
		errbuf[PCAP_ERRBUF_SIZE - 1] = 0;
	}
	pcap_close(p);
	return rc;
}

// xdpscan_compile_live compiles expr as libpcap does for a live capture
// on iface: the handle is activated, so on Linux libpcap learns from the
// kernel (SO_BPF_EXTENSIONS) that a socket filter can read the VLAN tag
// the kernel moved into metadata and emits SKF_AD_* ancillary loads for
// `vlan`, `inbound` and the like. Activation opens an AF_PACKET socket
// (CAP_NET_RAW) with a small ring that is closed at once. Returns -2 when
// activation failed (errbuf says why), -1 when the compile failed.
static int xdpscan_compile_live(const char *iface, const char *expr, int snaplen, struct bpf_program *prog, char *errbuf) {
	pcap_t *p = pcap_create(iface, errbuf);
	if (p == NULL)
		return -2;
	pcap_set_snaplen(p, snaplen);
	pcap_set_buffer_size(p, 64 << 10);
	int rc = pcap_activate(p);
	if (rc < 0) {
		strncpy(errbuf, pcap_statustostr(rc), PCAP_ERRBUF_SIZE - 1);
		const char *why = pcap_geterr(p);
		if (why != NULL && why[0] != 0)
			strncpy(errbuf, why, PCAP_ERRBUF_SIZE - 1);
		errbuf[PCAP_ERRBUF_SIZE - 1] = 0;
		pcap_close(p);
		return -2;
	}
	if (pcap_datalink(p) != DLT_EN10MB) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "link-type %s, not Ethernet (EN10MB)",
			 pcap_datalink_val_to_name(pcap_datalink(p)) ? pcap_datalink_val_to_name(pcap_datalink(p)) : "unknown");
		pcap_close(p);
		return -2;
	}
	rc = pcap_compile(p, prog, expr, 1, PCAP_NETMASK_UNKNOWN);
	if (rc < 0) {
		strncpy(errbuf, pcap_geterr(p), PCAP_ERRBUF_SIZE - 1);
		errbuf[PCAP_ERRBUF_SIZE - 1] = 0;
	}
	pcap_close(p);
	return rc;
}
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/net/bpf"
)

// MaxExpressionBytes is the longest filter expression Compile accepts.
// libpcap's compile time grows faster than linearly with the expression
// (its optimizer iterates over the whole flow graph) and pcap_compile
// cannot be interrupted. Measured on this project's machine kind (libpcap
// 1.10.3, one compile at a time, a busy 2-CPU VM):
//
//	`ip dst A or ip dst B ...`    4,000 terms, 92 KB: 0.8 s
//	`ip host A or ip host B ...`  1,000 terms, 24 KB: 0.3 s; 2,000, 47 KB: 2.1 s; 4,000, 96 KB: 9 s
//	`host A or host B ...`        250 terms, 5 KB: 0.75 s; 500, 10 KB: 6 s; 1,000, 20 KB: 68 s
//
// (`host` is IPv4, ARP and RARP: the time grows as the cube of the terms).
// At 64 KiB the common forms compile in seconds and a 1 MiB expression is
// refused at once, but no length bounds every form's time: CompileContext,
// which a signal abandons, is what keeps Ctrl-C working. A filter this long
// is far beyond what people type; a set of addresses that large belongs in
// an allow list. Rerun: `go test ./filter -run TestCompileLimits -v` logs
// the times of the limit's cases.
const MaxExpressionBytes = 64 << 10

// MaxInstructions is the most classic BPF instructions Compile returns:
// the limit of what the capture program can hold. The program carries
// one copy of the filter for each frame shape (six, VLAN-tagged frames
// included), each classic
// instruction becomes up to several eBPF ones, and the kernel refuses
// programs over 1M eBPF instructions (BPF_COMPLEXITY_LIMIT_INSNS).
const MaxInstructions = 65_535

// Compile compiles a tcpdump/pcap-filter expression for Ethernet frames
// with libpcap (optimized, as tcpdump does). An empty expression matches
// everything. Errors carry libpcap's own message.
func Compile(expr string, snaplen int) ([]bpf.RawInstruction, error) {
	return CompileContext(context.Background(), expr, snaplen)
}

// CompileContext is Compile that returns ctx's error as soon as ctx is
// done. pcap_compile itself cannot be stopped: it goes on in the
// background until it ends and its result is then freed, unused; the
// caller (a capture told to stop) is free to exit meanwhile. libpcap is
// thread-safe here since 1.8 (Debian 12 ships 1.10.3): compiles need no
// lock of ours.
func CompileContext(ctx context.Context, expr string, snaplen int) ([]bpf.RawInstruction, error) {
	return compileAbandonable(ctx, expr, snaplen, func() ([]bpf.RawInstruction, error) {
		return compile(expr, snaplen, MaxInstructions)
	})
}

// compileAbandonable checks expr, then runs compile (one of libpcap's
// compiles of it) in the background and returns its result, or ctx's
// error as soon as ctx is done. An empty expression keeps every packet
// whole, as libpcap's own empty filter does.
func compileAbandonable(ctx context.Context, expr string, snaplen int, compile func() ([]bpf.RawInstruction, error)) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return []bpf.RawInstruction{{Op: 0x06, K: uint32(snaplen)}}, nil // ret #snaplen
	}
	if err := CheckExpression(expr); err != nil {
		return nil, err
	}
	type result struct {
		insns []bpf.RawInstruction
		err   error
	}
	done := make(chan result, 1) // buffered: an abandoned compile never blocks
	go func() {
		insns, err := compile()
		done <- result{insns, err}
	}()
	select {
	case r := <-done:
		return r.insns, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("filter compilation abandoned: %w", ctx.Err())
	}
}

// CheckExpression refuses, before any work, an expression Compile would
// refuse for its size or bytes alone.
func CheckExpression(expr string) error {
	if len(expr) > MaxExpressionBytes {
		return fmt.Errorf("filter of %d bytes: at most %d bytes (%d KiB) are accepted, as libpcap's compile time grows steeply with length; capture with a shorter filter",
			len(expr), MaxExpressionBytes, MaxExpressionBytes>>10)
	}
	if strings.IndexByte(expr, 0) >= 0 {
		return fmt.Errorf("filter %s: contains a NUL byte", QuoteShort(expr))
	}
	return nil
}

// compile calls libpcap. gopacket's pcap.CompileBPFFilter is not used: it
// views the result as an array of 4096×8 instructions and panics (slice
// bounds out of range) on a program longer than that.
func compile(expr string, snaplen, most int) ([]bpf.RawInstruction, error) {
	return compileOn("", expr, snaplen, most)
}

// compileOn is compile for a live handle on iface ("": a dead Ethernet
// handle, as for a savefile).
func compileOn(iface, expr string, snaplen, most int) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	errbuf := (*C.char)(C.calloc(C.PCAP_ERRBUF_SIZE, 1))
	defer C.free(unsafe.Pointer(errbuf))
	var prog C.struct_bpf_program
	var rc C.int
	if iface == "" {
		rc = C.xdpscan_compile(cexpr, C.int(snaplen), &prog, errbuf)
	} else {
		ciface := C.CString(iface)
		defer C.free(unsafe.Pointer(ciface))
		rc = C.xdpscan_compile_live(ciface, cexpr, C.int(snaplen), &prog, errbuf)
	}
	if rc == -2 {
		return nil, &LiveError{Iface: iface, Reason: C.GoString(errbuf)}
	}
	if rc < 0 {
		return nil, &SyntaxError{Expr: expr, Libpcap: C.GoString(errbuf)}
	}
	defer C.pcap_freecode(&prog)
	n := int(prog.bf_len)
	if n > most {
		return nil, fmt.Errorf("filter %s compiles to %d classic BPF instructions: at most %d fit in the capture program; capture with a shorter filter",
			QuoteShort(expr), n, most)
	}
	if n == 0 || prog.bf_insns == nil {
		return nil, fmt.Errorf("filter %s: libpcap returned an empty program", QuoteShort(expr))
	}
	out := make([]bpf.RawInstruction, n)
	for i, in := range unsafe.Slice(prog.bf_insns, n) {
		out[i] = bpf.RawInstruction{Op: uint16(in.code), Jt: uint8(in.jt), Jf: uint8(in.jf), K: uint32(in.k)}
	}
	return out, nil
}

// QuoteShort quotes an expression for a message, cut to its first 200
// bytes: a message should not repeat a 60 KiB filter.
func QuoteShort(expr string) string {
	const most = 200
	if len(expr) <= most {
		return fmt.Sprintf("%q", expr)
	}
	return fmt.Sprintf("%q... (%d bytes)", expr[:most], len(expr))
}
