// SPDX-License-Identifier: Apache-2.0
// prog.c: the traced program of ftpatch's end-to-end tests.
//
// Built by internal/cli/enable_test.go (TestEndToEnd), with GCC and Clang:
//   CC -O2 -fpatchable-function-entry=4,2 -falign-functions=8
//      -mbranch-protection=standard -c prog.c
// and linked -no-pie with counter.o and `ftpatch trampoline` output.
//
// Every function below has a patch site and a call count known in advance
// (the table in the test must match): main 1, e2e_add 12, e2e_mul 6,
// e2e_fib 177 (fib(10)), e2e_sum8 3, e2e_square 5, e2e_weak 2, e2e_struct 4.
// The program prints results computed from its arguments, so a trampoline
// that clobbers a register changes the output.
#include <stdio.h>

#define NOINLINE __attribute__((noinline))

struct pair { long a, b, c; }; // returned in memory: x8 carries its address

NOINLINE long e2e_add(long a, long b) { return a + b; }
NOINLINE long e2e_mul(long a, long b) { return a * b; }
// Recursion through a volatile pointer: the compiler cannot turn it into a
// loop, and the indirect calls land on the BTI C of the entry.
NOINLINE long e2e_fib(long n);
static long (*volatile fibp)(long) = e2e_fib;
NOINLINE long e2e_fib(long n) { return n < 2 ? n : fibp(n - 1) + fibp(n - 2); }
NOINLINE long e2e_sum8(long a, long b, long c, long d, long e, long f, long g, long h)
{
	return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}
NOINLINE static long e2e_square(long x) { return x * x; }
__attribute__((weak)) NOINLINE long e2e_weak(long x) { return x ^ 0x5a; }
NOINLINE struct pair e2e_struct(long x)
{
	struct pair p = { x, x + 1, x * 3 };
	return p;
}

// Keep the compiler from folding calls: values come through here.
volatile long seed = 3;

int main(void)
{
	long acc = 0;
	for (long i = 0; i < 12; i++)
		acc = e2e_add(acc, i * seed);
	printf("add %ld\n", acc);
	long m = 1;
	for (long i = 1; i <= 6; i++)
		m = e2e_mul(m, i + seed);
	printf("mul %ld\n", m);
	printf("fib %ld\n", fibp(10 + seed - 3));
	long s = 0;
	for (long i = 0; i < 3; i++)
		s += e2e_sum8(i, seed, i + 1, seed + 2, i * 2, 7, seed * i, 11);
	printf("sum8 %ld\n", s);
	long q = 0;
	for (long i = 0; i < 5; i++)
		q += e2e_square(i + seed);
	printf("square %ld\n", q);
	printf("weak %ld %ld\n", e2e_weak(seed), e2e_weak(seed + 1));
	long t = 0;
	for (long i = 0; i < 4; i++) {
		struct pair p = e2e_struct(i + seed);
		t += p.a * 100 + p.b * 10 + p.c;
	}
	printf("struct %ld\n", t);
	return 0;
}
