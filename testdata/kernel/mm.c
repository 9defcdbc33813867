/* SPDX-License-Identifier: Apache-2.0
 * mm.c: a toy page and object allocator.
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS; linked into vmlinux.
 */
#include "kern.h"

#define NR_PAGES 16

static struct page pages[NR_PAGES];
static struct page *free_list;
static char heap[4096];
static ulong heap_top;

struct page *alloc_pages(uint order)
{
	struct page *p = free_list;

	if (order > 4)
		return 0;
	if (p)
		free_list = p->next;
	else if (heap_top / 256 < NR_PAGES)
		p = &pages[heap_top / 256];
	return p;
}

void free_pages(struct page *p, uint order)
{
	if (!p)
		return;
	p->flags = order;
	p->next = free_list;
	free_list = p;
}

void *kmalloc(ulong size)
{
	void *p;

	size = (size + 15) & ~15UL;
	if (heap_top + size > sizeof(heap)) {
		if (oom_kill_process(0) < 0)
			return 0;
		heap_top = 0;
	}
	p = &heap[heap_top];
	heap_top += size;
	return p;
}

void kfree(void *p)
{
	if ((char *)p + 16 == &heap[heap_top])
		heap_top -= 16;
}

static noinline int fault_in(ulong addr)
{
	return handle_mm_fault(addr, 0);
}

int copy_from_user(void *dst, const void *src, ulong n)
{
	if ((ulong)src >= 0xffff000000000000UL)
		return fault_in((ulong)src);
	kmemcpy(dst, src, n);
	return 0;
}
