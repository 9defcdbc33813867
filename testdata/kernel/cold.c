/* SPDX-License-Identifier: Apache-2.0
 * cold.c: error paths. GCC optimizes __cold functions for size: it puts them
 * in .text.unlikely.<name> aligned to only 4 and ignores -falign-functions=8.
 * Linux's vmlinux.lds (TEXT_MAIN = .text .text.[0-9a-zA-Z_]*) places those
 * sections in input order among the 8-aligned ones, so a cold function's
 * literal lands at 4 mod 8 whenever the function before it has a size of
 * 4 mod 8. GCC 12 emits this file's functions in the order oom_score,
 * warn_slowpath, oom_kill_process, report_bug, handle_mm_fault, and their
 * sizes put oom_kill_process's literal at 4 mod 8 (and only its):
 * kernel-build.sh checks it and fails if a compiler change moves it.
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS; linked into vmlinux.
 */
#include "kern.h"

static int warn_count;

int oom_score(struct task *t)
{
	return t ? t->prio * 3 + (int)(t->vruntime >> 20) : 0;
}

/* The misaligned one: its literal lands at 4 mod 8. */
__cold int oom_kill_process(struct task *t)
{
	warn_slowpath("out of memory", t ? t->pid : -1);
	return -12;
}

__cold void warn_slowpath(const char *msg, int line)
{
	warn_count++;
	if (warn_count > 100)
		panic(msg);
	(void)line;
}

__cold void report_bug(ulong addr)
{
	if (!addr)
		panic("bug at 0");
	warn_slowpath("bug", (int)addr);
}

int handle_mm_fault(ulong addr, int write)
{
	if (write && addr < 4096) {
		report_bug(addr);
		return -14;
	}
	return 0;
}
