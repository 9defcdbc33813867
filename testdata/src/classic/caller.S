// SPDX-License-Identifier: Apache-2.0
// A classic kernel's common trampoline, written for ftpatch's tests in the
// shape of Linux 5.5-6.2's arm64 ftrace_caller (-fpatchable-function-entry=2,
// no literal): the op comes from the global function_trace_op, and the
// callback is called through the BL at the global label ftrace_call, which
// ftrace rewrites at run time (here it calls ftrace_stub). Entered by
// BL from a site after MOV X9, X30: X30 = the return into the traced
// function, X9 = its parent; back into the function with X30 = X9.

	.text
	.globl	ftrace_caller
	.type	ftrace_caller, %function
	.p2align 3
ftrace_caller:
	bti	c
	sub	sp, sp, #96
	stp	x0, x1, [sp]
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]		// x9: the parent
	stp	x29, x30, [sp, #80]		// x30: the return into the function
	add	x29, sp, #80
	sub	x0, x30, #4			// ip: the site's BL
	mov	x1, x9				// parent_ip
	adrp	x2, function_trace_op
	ldr	x2, [x2, :lo12:function_trace_op]
	mov	x3, sp
	.globl	ftrace_call
ftrace_call:
	bl	ftrace_stub			// ftrace: bl <callback>
	ldp	x0, x1, [sp]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldr	x8, [sp, #64]
	ldr	x9, [sp, #88]			// back into the function
	ldr	x30, [sp, #72]			// with X30 = the parent
	ldr	x29, [sp, #80]
	add	sp, sp, #96
	ret	x9
	.size	ftrace_caller, .-ftrace_caller

	.globl	ftrace_stub
	.type	ftrace_stub, %function
ftrace_stub:
	bti	c
	ret
	.size	ftrace_stub, .-ftrace_stub

	.data
	.p2align 3
	.globl	function_trace_op
	.type	function_trace_op, %object
function_trace_op:
	.quad	0
	.size	function_trace_op, 8

	.section .note.GNU-stack,"",%progbits
