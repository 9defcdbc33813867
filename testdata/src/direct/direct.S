// SPDX-License-Identifier: Apache-2.0
// Direct trampolines and ops for prog.c (issue 11). struct ftrace_ops is
// modelled by its two fields ftpatch uses: func at 0 and direct_call at
// 208 (ftpatch's default --direct-call-offset, Linux 6.12's layout).

	.text
	// A direct trampoline that logs the X9 (parent) and X30 (return into
	// the traced function) it is entered with, then returns as Linux's
	// contract says: to X30, with X30 = X9. Clobbers x10-x12 and flags.
	.globl	my_direct_tramp
	.type	my_direct_tramp, %function
	.p2align 3
my_direct_tramp:
	bti	c
	adrp	x10, direct_log
	add	x10, x10, :lo12:direct_log
	ldr	x11, [x10]
	cmp	x11, #64
	b.hs	1f
	add	x12, x10, x11, lsl #4
	stp	x9, x30, [x12, #16]
	add	x11, x11, #1
	str	x11, [x10]
1:	mov	x10, x30
	mov	x30, x9
	ret	x10
	.size	my_direct_tramp, .-my_direct_tramp

	// Linux's simplest direct trampoline (ftrace_stub_direct_tramp's
	// contract): no memory written, so verify, which maps the program
	// read-only, can run it.
	.globl	quiet_direct_tramp
	.type	quiet_direct_tramp, %function
	.p2align 3
quiet_direct_tramp:
	bti	c
	mov	x10, x30
	mov	x30, x9
	ret	x10
	.size	quiet_direct_tramp, .-quiet_direct_tramp

	// A broken one: returns into the function but leaves X30 there, so
	// the traced function's own return loses its parent.
	.globl	bad_direct_tramp
	.type	bad_direct_tramp, %function
bad_direct_tramp:
	bti	c
	ret
	.size	bad_direct_tramp, .-bad_direct_tramp

	// op->func of the ops below: returns at once.
	.globl	cb
	.type	cb, %function
cb:
	bti	c
	ret
	.size	cb, .-cb

	.data
	.p2align 3
	.globl	direct_log
	.type	direct_log, %object
direct_log:				// count, pad, then 64 (x9, x30) pairs
	.quad	0, 0
	.skip	64 * 16
	.size	direct_log, .-direct_log

	.globl	ops_plain		// direct_call 0
	.type	ops_plain, %object
ops_plain:
	.quad	cb
	.skip	200
	.quad	0
	.size	ops_plain, .-ops_plain

	.globl	ops_direct		// direct_call = my_direct_tramp
	.type	ops_direct, %object
ops_direct:
	.quad	cb
	.skip	200
	.quad	my_direct_tramp
	.size	ops_direct, .-ops_direct

	.globl	ops_quiet		// direct_call = quiet_direct_tramp
	.type	ops_quiet, %object
ops_quiet:
	.quad	cb
	.skip	200
	.quad	quiet_direct_tramp
	.size	ops_quiet, .-ops_quiet

	.globl	ops_junk		// direct_call points at data
	.type	ops_junk, %object
ops_junk:
	.quad	cb
	.skip	200
	.quad	ops_plain
	.size	ops_junk, .-ops_junk

	.section .note.GNU-stack,"",%progbits
