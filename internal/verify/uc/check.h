// SPDX-License-Identifier: Apache-2.0
// What a run starts with and what it must end with: the registers a run is
// seeded with, and the checks a run's result must pass. One copy, included
// by the runner (batch.c) and by the bench's emulator floor
// (scripts/verify-floor.c), so that the floor seeds and checks exactly as
// verify does. Package verify explains a failed check in words
// (engine.failure); a run these checks pass is one it would pass.
#ifndef FTPATCH_CHECK_H
#define FTPATCH_CHECK_H
#include <stdint.h>

// Register slots: X0..X30, SP, NZCV in; the same and PC out.
#define FTP_NIN 33
#define FTP_NOUT 34
#define FTP_SP 31
#define FTP_NZCV 32
#define FTP_PC 33

// What a run must do (package verify's site states); FTP_JUDGE_NONE: the
// Go side judges the run.
#define FTP_JUDGE_NONE 0
#define FTP_JUDGE_NOP 1     // no call; every register unchanged
#define FTP_JUDGE_INIT 2    // no call; X9 = the parent; every other register unchanged
#define FTP_JUDGE_ENABLED 3 // one call of op->func(ip, parent, op); X0-X8, X19-X30, SP unchanged

// ftp_mix63 is a bijection of [0, 2^63): xor-shifts and multiplications
// by odd constants, each invertible modulo 2^63 (splitmix64's finalizer,
// narrowed).
static inline uint64_t ftp_mix63(uint64_t z) {
	const uint64_t m = (1ull << 63) - 1;
	z &= m;
	z ^= z >> 31;
	z = (z * 0xbf58476d1ce4e5b9ull) & m;
	z ^= z >> 29;
	z = (z * 0x94d049bb133111ebull) & m;
	return z ^ (z >> 32);
}

// ftp_seed_regs draws X0..X29 and NZCV for run index of seed into regs:
// X0..X29 distinct, each with bit 63 set (never a small value a stray MOV
// could produce); X30 and SP are left as they are. The values follow from
// (seed, index) alone, whatever runs before: a start drawn from the pair,
// thirty steps of an odd stride from it (distinct modulo 2^63), each mixed
// by a bijection, so distinct by construction, with no check among them.
static inline void ftp_seed_regs(uint64_t seed, uint64_t index, uint64_t regs[FTP_NIN]) {
	uint64_t x = ftp_mix63(seed * 0xd1342543de82ef95ull ^ (index + 1) * 0x9e3779b97f4a7c15ull);
	const uint64_t stride = 0x9e3779b97f4a7c15ull; // odd
	for (int k = 0; k < 30; k++) {
		regs[k] = ftp_mix63(x + (uint64_t)k * stride) | 1ull << 63;
	}
	regs[FTP_NZCV] = (ftp_mix63(x ^ 0x5851f42d4c957f2dull) & 0xf) << 28;
}

// ftp_judge reports whether a run that ended without error at PC out[FTP_PC]
// did what state requires: it stopped at until, made calls intercepted calls
// with the last one's X0..X2 in args, and left the registers as the state
// allows (in: what it started with). sentinel is the parent address (X30 on
// entry); call_site and op are what an enabled site's call must pass.
static inline int ftp_judge(int state, uint64_t until, uint64_t call_site, uint64_t op, uint64_t sentinel,
                            const uint64_t in[FTP_NIN], const uint64_t out[FTP_NOUT], uint32_t calls, const uint64_t args[3]) {
	if (out[FTP_PC] != until) {
		return 0;
	}
	uint64_t kept = (1ull << FTP_PC) - 1; // X0-X30, SP, NZCV
	switch (state) {
	case FTP_JUDGE_NOP:
		if (calls != 0) {
			return 0;
		}
		break;
	case FTP_JUDGE_INIT:
		if (calls != 0 || out[9] != sentinel) {
			return 0;
		}
		kept &= ~(1ull << 9);
		break;
	case FTP_JUDGE_ENABLED:
		if (calls != 1 || args[0] != call_site || args[1] != sentinel || args[2] != op) {
			return 0;
		}
		// What a call through a trampoline gives back: X0-X8, X19-X30, SP.
		kept = ((1ull << 9) - 1) | (((1ull << 31) - 1) & ~((1ull << 19) - 1)) | (1ull << FTP_SP);
		break;
	default:
		return 0;
	}
	for (int r = 0; r < FTP_PC; r++) {
		if ((kept >> r & 1) && out[r] != in[r]) {
			return 0;
		}
	}
	return 1;
}

#endif
