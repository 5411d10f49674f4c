package probe

// Each probe kind's replies are validated in the kernel by one C function
// of the scan program, in its own header beside the others
// (bpf/include/probe_syn.h, probe_udp.h, probe_echo.h). Validator names it,
// so that adding a probe kind means a Go type here plus its C validator, and
// TestValidatorsExistInScanProgram fails when the two drift apart.

// Validator is the C function of the scan program that validates answers
// to SYN probes and ICMP errors quoting them (bpf/include/probe_syn.h).
func (*SYN) Validator() string { return "syn_validate" }

// Validator is the C function of the scan program that validates answers
// to UDP probes and their confirming retries, and ICMP errors quoting them
// (bpf/include/probe_udp.h).
func (*UDP) Validator() string { return "udp_validate" }

// Validator is the C function of the scan program that validates echo
// replies and ICMP errors quoting an echo request (bpf/include/probe_echo.h).
func (*Echo) Validator() string { return "echo_validate" }
