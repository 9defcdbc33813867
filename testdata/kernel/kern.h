/* SPDX-License-Identifier: Apache-2.0
 * kern.h: a few kernel idioms for the kernel-like test build.
 * Built by scripts/kernel-build.sh (see testdata/kernel/README.md).
 */
#ifndef KERN_H
#define KERN_H

typedef unsigned long ulong;
typedef unsigned int uint;

#define noinline __attribute__((noinline))
#define __cold __attribute__((cold))
#define __weak __attribute__((weak))
/* Linux's notrace with CALL_OPS: no patch site at all. */
#define notrace __attribute__((patchable_function_entry(0, 0)))
/* Linux's __init (without __cold: see cold.c for what __cold does). */
#define __init __attribute__((section(".init.text")))

struct ftrace_ops;
typedef void (*ftrace_func_t)(ulong ip, ulong parent_ip, struct ftrace_ops *op, void *fregs);

/* The literal before each function points at one of these; the trampoline
 * calls its first member. */
struct ftrace_ops {
	ftrace_func_t func;
	struct ftrace_ops *next;
	ulong flags;
	void *private;
};

extern struct ftrace_ops ftrace_nop_ops; /* what init writes */
extern struct ftrace_ops ops;            /* what enable writes */
extern ulong trace_hits;

struct task {
	int pid;
	int prio;
	ulong vruntime;
	struct task *next;
};

struct page {
	ulong flags;
	struct page *next;
	void *addr;
};

struct file {
	ulong pos;
	ulong size;
	const char *data;
};

/* core.c */
void ftrace_nop_func(ulong ip, ulong parent_ip, struct ftrace_ops *op, void *fregs);
void ops_callback(ulong ip, ulong parent_ip, struct ftrace_ops *op, void *fregs);
int start_kernel(void);
void panic(const char *msg);
ulong kmemcpy(void *dst, const void *src, ulong n);

/* sched.c: the subset to enable is every sched_ function */
struct task *sched_pick_next(struct task *rq);
void sched_tick(struct task *rq);
int sched_fork(struct task *parent, struct task *child);
void sched_yield(struct task *rq);
int sched_setprio(struct task *t, int prio);

/* mm.c */
void *kmalloc(ulong size);
void kfree(void *p);
struct page *alloc_pages(uint order);
void free_pages(struct page *p, uint order);

/* fs.c */
long vfs_read(struct file *f, char *buf, ulong n);
long vfs_write(struct file *f, const char *buf, ulong n);
long vfs_llseek(struct file *f, long off, int whence);

/* cold.c */
void warn_slowpath(const char *msg, int line);
int oom_kill_process(struct task *t);
void report_bug(ulong addr);
int handle_mm_fault(ulong addr, int write);

#endif
