/* SPDX-License-Identifier: Apache-2.0
 * drivers/drv_util.c: the second half of the "driver module".
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS, then
 * `ld -r -T module.lds` with drv_main.o into modules/drv.ko.
 */
#include "../kern.h"

struct drv_dev {
	int id;
	int state;
	ulong regs[4];
};

static noinline void drv_write_reg(struct drv_dev *d, int r, ulong v)
{
	d->regs[r & 3] = v;
}

ulong drv_read_reg(struct drv_dev *d, int r)
{
	return d->regs[r & 3];
}

int drv_reset(struct drv_dev *d)
{
	int i;

	for (i = 0; i < 4; i++)
		drv_write_reg(d, i, 0);
	d->state = 1;
	return drv_read_reg(d, 0) != 0;
}

__cold void drv_dump_state(struct drv_dev *d)
{
	warn_slowpath("drv state", d->state);
}
