/* SPDX-License-Identifier: Apache-2.0
 * core.c: boot, the ftrace_ops objects and a few core helpers.
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS; linked into vmlinux.
 */
#include "kern.h"

ulong trace_hits;
static char panic_buf[64];

void ftrace_nop_func(ulong ip, ulong parent_ip, struct ftrace_ops *op, void *fregs)
{
}

void ops_callback(ulong ip, ulong parent_ip, struct ftrace_ops *op, void *fregs)
{
	trace_hits++;
	op->private = (void *)ip;
}

/* What `ftpatch init` points every literal at. */
struct ftrace_ops ftrace_nop_ops = {
	.func = ftrace_nop_func,
};

/* What `ftpatch enable --ops ops` points the subset's literals at. */
struct ftrace_ops ops = {
	.func = ops_callback,
	.next = &ftrace_nop_ops,
	.flags = 1,
};

ulong kmemcpy(void *dst, const void *src, ulong n)
{
	char *d = dst;
	const char *s = src;
	ulong i;

	for (i = 0; i < n; i++)
		d[i] = s[i];
	return n;
}

void panic(const char *msg)
{
	ulong n = 0;

	while (msg[n] && n < sizeof(panic_buf) - 1)
		n++;
	kmemcpy(panic_buf, msg, n);
	for (;;)
		__asm__ volatile("wfi");
}

/* Never traced, like Linux's notrace helpers. */
notrace ulong read_cntvct(void)
{
	ulong v;

	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

__weak int arch_cpu_count(void)
{
	return 1;
}

static struct task init_rq[4];

static noinline int do_initcalls(void)
{
	struct task *rq = init_rq;
	int i;

	for (i = 0; i < 4; i++) {
		rq[i].pid = i + 1;
		rq[i].prio = 120 - i;
		rq[i].next = i < 3 ? &rq[i + 1] : 0;
	}
	sched_tick(rq);
	return sched_pick_next(rq)->pid;
}

int __init start_kernel(void)
{
	void *p = kmalloc(128);
	int n = do_initcalls() + arch_cpu_count();

	if (!p)
		warn_slowpath("kmalloc", __LINE__);
	kfree(p);
	return n + (int)(read_cntvct() & 1);
}
