/* SPDX-License-Identifier: Apache-2.0
 * ftrace_stub.S: the fallback trampoline when kernel-build.sh is given no
 * ftpatch binary (otherwise it links `ftpatch trampoline -o tramp.o`).
 * On entry (see the patch-site scheme) x9 holds the traced function's
 * return address and x30 the address after its BL; this stub returns into
 * the function with x30 restored, calling nothing.
 * Built by scripts/kernel-build.sh: aarch64-linux-gnu-gcc -c ftrace_stub.S.
 */
	.section .text.ftrace_caller, "ax"
	.balign 8
	.globl ftrace_caller
	.type ftrace_caller, %function
ftrace_caller:
	mov	x10, x30
	mov	x30, x9
	ret	x10
	.size ftrace_caller, . - ftrace_caller

	.section .note.GNU-stack, "", %progbits
