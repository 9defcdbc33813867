// SPDX-License-Identifier: Apache-2.0
// Call-ops patch sites written by hand in every state, for verify's ET_REL
// tests; assembled at test time with aarch64-linux-gnu-as (no binary committed).
// Sites f_wrong_bl, f_bad_reloc and f_prel are defects verify must catch.

	.macro site name, lit, s1, s2
	.section .text.\name,"ax",%progbits
	.p2align 3
.Lrec_\name:
	\lit
	.globl \name
	.type \name,%function
\name:
	bti c
	\s1
	\s2
	add x0, x0, #1
	ret
	.size \name, .-\name
	.section __patchable_function_entries,"awo",%progbits,.text.\name
	.p2align 3
	.quad .Lrec_\name
	.endm

	site f_nop, ".quad 0", nop, nop
	site f_init, ".quad 0", "mov x9, x30", nop
	site f_undef_ops, ".quad ext_ops", "mov x9, x30", "bl ftrace_caller"
	site f_def_ops, ".quad my_ops", "mov x9, x30", "bl ftrace_caller"
	site f_wrong_bl, ".quad ext_ops", "mov x9, x30", "bl elsewhere"
	site f_bad_reloc, ".quad ext_ops", "mov x9, x30", "b ftrace_caller"
	site f_prel, ".4byte ext_ops - . ; .4byte 0", "mov x9, x30", "bl ftrace_caller"

	.section .text.cb,"ax",%progbits
	.globl cb
cb:	ret
	.data
	.p2align 3
	.globl my_ops
my_ops:	.quad cb
