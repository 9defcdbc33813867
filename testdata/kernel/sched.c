/* SPDX-License-Identifier: Apache-2.0
 * sched.c: a toy scheduler; every sched_ function is "the subset" the
 * kernel flow test enables.
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS; linked into vmlinux.
 */
#include "kern.h"

static ulong nr_switches;

struct task *sched_pick_next(struct task *rq)
{
	struct task *best = rq;

	for (; rq; rq = rq->next)
		if (rq->vruntime < best->vruntime ||
		    (rq->vruntime == best->vruntime && rq->prio < best->prio))
			best = rq;
	nr_switches++;
	return best;
}

static noinline ulong weight(int prio)
{
	return prio < 100 ? 1024 : 1024 >> ((prio - 100) / 5);
}

void sched_tick(struct task *rq)
{
	for (; rq; rq = rq->next)
		rq->vruntime += 1024 * 1024 / (weight(rq->prio) + 1);
}

int sched_fork(struct task *parent, struct task *child)
{
	if (!parent || !child)
		return -22;
	child->prio = parent->prio;
	child->vruntime = parent->vruntime;
	child->pid = parent->pid + 1;
	child->next = parent->next;
	parent->next = child;
	return 0;
}

void sched_yield(struct task *rq)
{
	struct task *t = sched_pick_next(rq);

	t->vruntime += 1000;
}

int sched_setprio(struct task *t, int prio)
{
	if (prio < 0 || prio > 139) {
		warn_slowpath("bad prio", prio);
		return -22;
	}
	t->prio = prio;
	return 0;
}

/* Not in the subset: the prefix is the rule. */
ulong nr_context_switches(void)
{
	return nr_switches;
}
