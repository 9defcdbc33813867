/* SPDX-License-Identifier: Apache-2.0
 * drivers/drv_main.c: the first half of a two-file "driver module".
 * Built by scripts/kernel-build.sh with the kernel-like CFLAGS, then
 * `ld -r -T module.lds` with drv_util.o into modules/drv.ko.
 */
#include "../kern.h"

struct drv_dev {
	int id;
	int state;
	ulong regs[4];
};

int drv_reset(struct drv_dev *d);
ulong drv_read_reg(struct drv_dev *d, int r);
__cold void drv_dump_state(struct drv_dev *d);

static struct drv_dev devs[2];

int drv_probe(int id)
{
	struct drv_dev *d;

	if (id < 0 || id > 1)
		return -19;
	d = &devs[id];
	d->id = id;
	if (drv_reset(d)) {
		drv_dump_state(d);
		return -5;
	}
	return 0;
}

void drv_remove(int id)
{
	if (id >= 0 && id <= 1)
		devs[id].state = 0;
}

int init_module(void)
{
	return drv_probe(0) | drv_probe(1);
}

void cleanup_module(void)
{
	drv_remove(1);
	drv_remove(0);
}
