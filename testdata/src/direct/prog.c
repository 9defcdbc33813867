/* SPDX-License-Identifier: Apache-2.0 */
/* Direct calls end to end (issue 11): f_add and f_mul get patch sites;
 * the test enables f_add with a BL straight to my_direct_tramp and f_mul
 * through ftrace_caller with an ops whose direct_call is my_direct_tramp,
 * runs the program under qemu and checks each logged (X9, X30) pair.
 * f_add is called 3 times, f_mul 2 times. */
#include <stdio.h>

extern unsigned long direct_log[];

__attribute__((noinline, noipa)) long f_add(long a, long b) { return a + b; }
__attribute__((noinline, noipa)) long f_mul(long a, long b) { return a * b; }

int main(void)
{
	long s = 0;
	for (long i = 0; i < 3; i++)
		s += f_add(i, 7);
	for (long i = 1; i < 3; i++)
		s += f_mul(i, 5);
	printf("sum %ld\n", s);
	printf("log %lu\n", direct_log[0]);
	for (unsigned long i = 0; i < direct_log[0] && i < 64; i++)
		printf("x9 %#lx x30 %#lx\n", direct_log[2 + 2 * i], direct_log[3 + 2 * i]);
	return 0;
}
