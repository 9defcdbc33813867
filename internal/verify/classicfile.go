// SPDX-License-Identifier: Apache-2.0

package verify

// Classic kernels under their own trampoline (--run-file-trampoline on
// -fpatchable-function-entry=2 images, Linux 5.5-6.2 style). Their
// ftrace_caller takes the op from the global function_trace_op (ADRP+LDR)
// and calls the callback through the BL at the label ftrace_call, which
// ftrace patches at run time (ftrace_update_ftrace_func). verify puts its
// stand-in op into function_trace_op and points the ftrace_call BL at its
// hooked stand-in func, so the run shows op->func(ip, parent_ip, op) as
// the kernel's own trampoline passes it.

import (
	"fmt"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/encode"
)

// Symbols of a classic kernel's ftrace_caller.
const (
	classicOpSym   = "function_trace_op"
	classicCallSym = "ftrace_call"
)

// setupClassicFile prepares a linked classic image whose own trampoline is
// to run; it returns why it cannot, or "".
func (img *Image) setupClassicFile(o *elfscan.Object) string {
	opAt, err := resolveLinked(o, classicOpSym)
	if err != nil {
		return fmt.Sprintf("a classic kernel's trampoline takes the op from %s: %v", classicOpSym, err)
	}
	callAt, err := resolveLinked(o, classicCallSym)
	if err != nil {
		return fmt.Sprintf("a classic kernel's trampoline calls the callback at %s: %v", classicCallSym, err)
	}
	if w, ok := img.read32(callAt); !ok || !img.isCode(callAt) || !encode.IsBL(w) {
		return fmt.Sprintf("%s at %#x is not a BL (word %#08x); the trampoline's callback call is not where the kernel patches it", classicCallSym, callAt, w)
	}
	bl, err := encode.BL{From: callAt, To: img.standinFunc}.Encode()
	if err != nil {
		return fmt.Sprintf("%s at %#x: verify's stand-in callback at %#x is out of BL range: %v", classicCallSym, callAt, img.standinFunc, err)
	}
	if !img.write64(opAt, img.standinOps) {
		return fmt.Sprintf("%s at %#x is not in a loaded segment", classicOpSym, opAt)
	}
	img.write32(callAt, bl)
	return ""
}
