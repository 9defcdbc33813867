// SPDX-License-Identifier: Apache-2.0
// counter.c: the tracing callback of ftpatch's end-to-end tests.
//
// Built WITHOUT patch sites (no -fpatchable-function-entry) by
// internal/cli/enable_test.go:
//   CC -O2 -mbranch-protection=standard -c counter.c
//
// Defines `ops`, laid out as Linux's struct ftrace_ops (func at offset 0).
// The trampoline calls ops.func(ip, parent_ip, op, regs) with ip = the
// address of the BL; count() counts calls per ip, and counts any call whose
// op is not &ops, or whose parent_ip is 0, as bad. At exit it prints, on
// stderr so that stdout stays the program's own output:
//   ftrace-count 0x<ip> <n>     one line per ip, in first-call order
//   ftrace-bad <n>
#include <stdio.h>

struct ftrace_ops;
typedef void (*ftrace_func_t)(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *op, void *regs);
struct ftrace_ops {
	ftrace_func_t func;
	unsigned long flags;
};

static void count(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *op, void *regs);

struct ftrace_ops ops = { count, 0 };

#define MAXIP 256
static unsigned long ips[MAXIP], counts[MAXIP];
static unsigned long nips, bad;

static void count(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *op, void *regs)
{
	(void)regs;
	if (op != &ops || parent_ip == 0) {
		bad++;
		return;
	}
	for (unsigned long i = 0; i < nips; i++) {
		if (ips[i] == ip) {
			counts[i]++;
			return;
		}
	}
	if (nips < MAXIP) {
		ips[nips] = ip;
		counts[nips++] = 1;
	} else {
		bad++;
	}
}

__attribute__((destructor)) static void report(void)
{
	for (unsigned long i = 0; i < nips; i++)
		fprintf(stderr, "ftrace-count %#lx %lu\n", ips[i], counts[i]);
	fprintf(stderr, "ftrace-bad %lu\n", bad);
}
