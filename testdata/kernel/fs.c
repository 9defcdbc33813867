/* SPDX-License-Identifier: Apache-2.0
 * fs.c: a toy VFS over in-memory files.
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS; linked into vmlinux.
 */
#include "kern.h"

long vfs_read(struct file *f, char *buf, ulong n)
{
	if (f->pos >= f->size)
		return 0;
	if (n > f->size - f->pos)
		n = f->size - f->pos;
	kmemcpy(buf, f->data + f->pos, n);
	f->pos += n;
	return n;
}

long vfs_write(struct file *f, const char *buf, ulong n)
{
	if (!buf)
		return -14;
	f->pos += n;
	if (f->pos > f->size)
		f->size = f->pos;
	return n;
}

long vfs_llseek(struct file *f, long off, int whence)
{
	long pos;

	switch (whence) {
	case 0:
		pos = off;
		break;
	case 1:
		pos = f->pos + off;
		break;
	case 2:
		pos = f->size + off;
		break;
	default:
		return -22;
	}
	if (pos < 0)
		return -22;
	f->pos = pos;
	return pos;
}

static long do_sys_read(struct file *f, char *buf, ulong n)
{
	long r = vfs_read(f, buf, n);

	if (r < 0)
		report_bug((ulong)f);
	return r;
}

long ksys_read(struct file *f, char *buf, ulong n)
{
	return do_sys_read(f, buf, n);
}
