// SPDX-License-Identifier: Apache-2.0
// The C side of Runner (batch.go): many arm64 runs per cgo call, with the
// registers of each run in and out through arrays, and calls of a set of
// addresses intercepted by a hook in C. Go crosses into C once per batch,
// not four or five times per run.
#ifndef FTPATCH_BATCH_H
#define FTPATCH_BATCH_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "uc.h"
#include "check.h" // the register slots, seeding and checks

// One run: from begin until until, with regs set first (drawn by
// ftp_seed_regs from the runner's seed and index when seed is set; X30 and
// SP are the caller's), and judged by ftp_judge when judge is not
// FTP_JUDGE_NONE. Layout shared with batch.go's Run.
struct ftp_run {
	uint64_t begin, until;
	uint64_t regs[FTP_NIN];
	uint64_t call_site, op, index;
	uint32_t judge, seed;
};

// What a run did. Layout shared with batch.go's Result.
struct ftp_result {
	uint64_t regs[FTP_NOUT];
	uint64_t args[4];  // X0..X3 at the last intercepted call
	uint32_t calls;    // intercepted calls
	int32_t err;       // uc_err of uc_emu_start, or of the hook's register access
	uint32_t stopped;  // why the watchdog stopped the run (FTP_STOP_*), 0 when it did not
	uint32_t aborted;  // a Go hook panicked during the run
	uint32_t passed;   // the run's judge passed it (ftp_judge)
	uint32_t pad;
};

enum { ftp_off_calls = offsetof(struct ftp_result, calls) };

// The exception number Unicorn's UC_HOOK_INTR passes for BRK (QEMU's
// EXCP_BKPT for Arm); batch_test.go checks it against a real BRK.
#define FTP_EXCP_BKPT 7

// Why the watchdog stopped a run.
#define FTP_STOP_SLICE 1   // it used more CPU than a run should
#define FTP_STOP_TIMEOUT 2 // it ran longer than the timeout (wall clock)

struct ftp_runner {
	uc_engine *uc;
	uc_hook hook;
	int hooked;
	uc_hook intr;
	int has_intr; // the interrupt hook is registered (a chaining runner)
	uint64_t *funcs; // intercepted addresses, sorted
	size_t nfuncs;
	int *abort; // set by a panicking Go hook (uc.go's engineRes)

	// The run in progress, for the hook.
	uint64_t run_entry;
	int at_entry;
	uint32_t calls;
	uint64_t args[4];
	int32_t hook_err;

	// A chained batch (ftp_runner_batch with chain set): the interrupt hook
	// ends run cur at its BRK and starts run cur+1 in the same
	// uc_emu_start.
	int chain;
	// Return traps: a BRK planted over a `RET Xret_reg` at each of
	// ret_traps (sorted). A chained run trapping there with Xret_reg = its
	// until ends as that RET would have: at until, nothing else changed.
	uint64_t *ret_traps;
	size_t nret_traps;
	int ret_reg; // index in regs_out
	uint64_t seed, sentinel; // for seeded and judged runs (ftp_runner_judge)
	struct ftp_run *runs;
	struct ftp_result *out;
	int n, cur;

	// With the watchdog (ftp_runner_poll, ftp_runner_stop), without a lock
	// (batch.c, the RUN_* bits): state is seq << RUN_SEQ_SHIFT | why the
	// watchdog stopped the run << RUN_WHY_SHIFT | running, written with
	// atomic operations; clock is the CPU clock of the thread running
	// the batch << 1 | 1, 0 when unknown.
	uint64_t state;
	uint64_t seq; // runs started; the runner's thread's own
	int64_t clock;

	// The watchdog thread's view (batch.c, watch_*): what a run may take
	// (ftp_runner_watch), the run it saw last, and the list of runners in
	// a batch, which it visits. Guarded by the watch list's lock.
	int64_t timeout_ns, slice_ns; // slice 0: no CPU slice
	struct ftp_runner *watch_next, **watch_prev;
	uint64_t seen_seq;
	int64_t seen_wall, seen_cpu;
	int seen;

	int regs_in[FTP_NIN], regs_out[FTP_NOUT];
	void *ptr_in[FTP_NIN], *ptr_out[FTP_NOUT];
};

struct ftp_runner *ftp_runner_new(uc_engine *uc, int *abort, const uint64_t *funcs, size_t nfuncs, int chain, uc_err *err);
void ftp_runner_free(struct ftp_runner *r);
int ftp_runner_ret_traps(struct ftp_runner *r, const uint64_t *addrs, size_t n, int reg);
void ftp_runner_judge(struct ftp_runner *r, uint64_t seed, uint64_t sentinel);
int ftp_runner_batch(struct ftp_runner *r, struct ftp_run *runs, struct ftp_result *out, int n, uint64_t count, int flush, int chain);
void ftp_runner_watch(struct ftp_runner *r, int64_t timeout_ns, int64_t slice_ns);
void ftp_runner_poll(struct ftp_runner *r, uint64_t *seq, int *running, int64_t *cpu_ns);
void ftp_runner_stop(struct ftp_runner *r, uint64_t seq, uint32_t why);

#endif
