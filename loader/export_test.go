package loader

import "github.com/cilium/ebpf/asm"

// WithoutVLANTagKfunc is what LoadCapture does to a program it does not
// bind to a device, for tests that load the embedded objects themselves.
func WithoutVLANTagKfunc(insns asm.Instructions) { withoutKfunc(insns, vlanTagKfunc) }

// KeepsAll is keepsAll, for capture_tc_test.go.
var KeepsAll = keepsAll
