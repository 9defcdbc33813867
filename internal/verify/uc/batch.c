// SPDX-License-Identifier: Apache-2.0
// Runner: see batch.h and batch.go.
#include <stdlib.h>
#include <string.h>
#include "batch.h"

static void on_intr(uc_engine *uc, uint32_t intno, void *user);

// in reports whether a is in the sorted set[0..n).
static int in(const uint64_t *set, size_t n, uint64_t a) {
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (set[m] < a) {
			lo = m + 1;
		} else {
			hi = m;
		}
	}
	return lo < n && set[lo] == a;
}

static int is_func(const struct ftp_runner *r, uint64_t a) { return in(r->funcs, r->nfuncs, a); }

// on_func records a call of an intercepted address and returns from it at
// once (PC = X30). The run's first instruction is the run starting, not a
// call, when the run begins at an intercepted address.
static void on_func(uc_engine *uc, uint64_t addr, uint32_t size, void *user) {
	struct ftp_runner *r = user;
	(void)size;
	if (!is_func(r, addr)) {
		return;
	}
	if (r->at_entry) {
		r->at_entry = 0;
		if (addr == r->run_entry) {
			return;
		}
	}
	r->calls++;
	int regs[5] = {UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2, UC_ARM64_REG_X3, UC_ARM64_REG_X30};
	uint64_t v[5];
	void *p[5] = {&v[0], &v[1], &v[2], &v[3], &v[4]};
	uc_err e = ftp_uc.uc_reg_read_batch(uc, regs, p, 5);
	if (e == UC_ERR_OK) {
		memcpy(r->args, v, sizeof r->args);
		e = ftp_uc.uc_reg_write(uc, UC_ARM64_REG_PC, &v[4]);
	}
	if (e != UC_ERR_OK) {
		r->hook_err = e;
		ftp_uc.uc_emu_stop(uc);
	}
}

struct ftp_runner *ftp_runner_new(uc_engine *uc, int *abort, const uint64_t *funcs, size_t nfuncs, int chain, uc_err *err) {
	*err = UC_ERR_NOMEM;
	struct ftp_runner *r = calloc(1, sizeof *r);
	if (r == NULL) {
		return NULL;
	}
	r->uc = uc;
	r->abort = abort;
	if (nfuncs > 0) {
		r->funcs = malloc(nfuncs * sizeof *funcs);
		if (r->funcs == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->funcs, funcs, nfuncs * sizeof *funcs);
		r->nfuncs = nfuncs;
	}
	for (int i = 0; i <= 28; i++) {
		r->regs_in[i] = UC_ARM64_REG_X0 + i;
	}
	r->regs_in[29] = UC_ARM64_REG_X29;
	r->regs_in[30] = UC_ARM64_REG_X30;
	r->regs_in[31] = UC_ARM64_REG_SP;
	r->regs_in[32] = UC_ARM64_REG_NZCV;
	memcpy(r->regs_out, r->regs_in, sizeof r->regs_in);
	r->regs_out[33] = UC_ARM64_REG_PC;
	// A hook on each intercepted address; with many, one over their span
	// (on_func checks the address).
	*err = UC_ERR_OK;
	if (nfuncs > 0 && nfuncs <= 256) {
		for (size_t i = 0; i < nfuncs && *err == UC_ERR_OK; i++) {
			uc_hook h;
			*err = ftp_uc.uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)on_func, r, r->funcs[i], r->funcs[i]);
		}
	} else if (nfuncs > 0) {
		*err = ftp_uc.uc_hook_add(uc, &r->hook, UC_HOOK_CODE, (void *)on_func, r, r->funcs[0], r->funcs[nfuncs - 1]);
	}
	if (*err == UC_ERR_OK && chain) {
		*err = ftp_uc.uc_hook_add(uc, &r->intr, UC_HOOK_INTR, (void *)on_intr, r, 1, 0);
		r->has_intr = *err == UC_ERR_OK;
	}
	// On an error the hooks added stay registered with user data r: the
	// engine must be closed before r is freed, as always.
	return r;
}

// ftp_runner_free releases r; its engine must be closed first (its hooks
// point at r).
void ftp_runner_free(struct ftp_runner *r) {
	if (r == NULL) {
		return;
	}
	free(r->funcs);
	free(r->ret_traps);
	free(r);
}

// ftp_runner_ret_traps sets the return traps (sorted addresses; reg: the
// register the RET there branches to, 0..30). It returns 0 when out of
// memory.
int ftp_runner_ret_traps(struct ftp_runner *r, const uint64_t *addrs, size_t n, int reg) {
	uint64_t *t = NULL;
	if (n > 0) {
		t = malloc(n * sizeof *t);
		if (t == NULL) {
			return 0;
		}
		memcpy(t, addrs, n * sizeof *t);
	}
	free(r->ret_traps);
	r->ret_traps = t;
	r->nret_traps = n;
	r->ret_reg = reg;
	return 1;
}

// ftp_runner_judge sets what seeded runs draw their registers from, and the
// parent address (X30 on entry) judged runs must pass on.
void ftp_runner_judge(struct ftp_runner *r, uint64_t seed, uint64_t sentinel) {
	r->seed = seed;
	r->sentinel = sentinel;
}

// The bits of a runner's state (struct ftp_runner): the run's sequence
// number, why the watchdog stopped it (FTP_STOP_*), and whether it runs.
// It used to be guarded by a mutex, locked twice a run: pthread_mutex_lock
// and unlock were 1.4-1.6 ms of a 53k-site verify (perf), which the floor
// does not pay; the exchange in end_run that replaces them costs about a
// third of that.
#define RUN_RUNNING 1u
#define RUN_WHY_SHIFT 1
#define RUN_WHY_MASK 3u
#define RUN_SEQ_SHIFT 3
_Static_assert(FTP_STOP_SLICE <= RUN_WHY_MASK && FTP_STOP_TIMEOUT <= RUN_WHY_MASK, "a stop reason fits the state's bits");

// begin_run sets up run i: its registers (drawn first for a seeded run), the
// hook's state, and a new sequence number for the watchdog. It returns the
// error of writing the registers.
static uc_err begin_run(struct ftp_runner *r, int i) {
	struct ftp_run *run = &r->runs[i];
	if (run->seed) {
		ftp_seed_regs(r->seed, run->index, run->regs);
	}
	for (int k = 0; k < FTP_NIN; k++) {
		r->ptr_in[k] = (void *)&run->regs[k];
	}
	uc_err e = ftp_uc.uc_reg_write_batch(r->uc, r->regs_in, r->ptr_in, FTP_NIN);
	r->cur = i;
	r->calls = 0;
	r->hook_err = 0;
	r->run_entry = run->begin;
	r->at_entry = 1;
	memset(r->args, 0, sizeof r->args);
	r->seq++;
	__atomic_store_n(&r->state, r->seq << RUN_SEQ_SHIFT | (e == UC_ERR_OK ? RUN_RUNNING : 0), __ATOMIC_RELEASE);
	return e;
}

// end_run records run i's registers and what happened (e: its error;
// stopped: whether the watchdog's stop counts for it; trapped: it ended at
// a BRK of a chained batch), and judges it.
static void end_run(struct ftp_runner *r, int i, uc_err e, int stopped, int trapped) {
	struct ftp_result *res = &r->out[i];
	const struct ftp_run *run = &r->runs[i];
	for (int k = 0; k < FTP_NOUT; k++) {
		r->ptr_out[k] = &res->regs[k];
	}
	uc_err re = ftp_uc.uc_reg_read_batch(r->uc, r->regs_out, r->ptr_out, FTP_NOUT);
	uint64_t was = __atomic_exchange_n(&r->state, r->seq << RUN_SEQ_SHIFT, __ATOMIC_ACQ_REL);
	res->stopped = stopped ? (uint32_t)(was >> RUN_WHY_SHIFT & RUN_WHY_MASK) : 0;
	if (e == UC_ERR_OK && r->hook_err != 0) {
		e = r->hook_err;
	}
	if (e == UC_ERR_OK) {
		e = re;
	}
	res->err = e;
	res->calls = r->calls;
	memcpy(res->args, r->args, sizeof res->args);
	res->aborted = r->abort != NULL && *r->abort;
	// A chained run that trapped over a tool trampoline's RET X<ret_reg>
	// with that register = its until ended as the RET would have.
	if (trapped && res->err == UC_ERR_OK && res->regs[FTP_PC] != run->until && res->regs[r->ret_reg] == run->until &&
	    in(r->ret_traps, r->nret_traps, res->regs[FTP_PC])) {
		res->regs[FTP_PC] = run->until;
	}
	res->passed = run->judge != FTP_JUDGE_NONE && res->err == UC_ERR_OK && res->stopped == 0 && !res->aborted &&
	              ftp_judge((int)run->judge, run->until, run->call_site, run->op, r->sentinel, run->regs, res->regs, res->calls, res->args);
}

// on_intr ends the current run of a chained batch at an exception: the
// run's BRK (the Go side judges whether PC is its stop address) or any
// other (UC_ERR_EXCEPTION, as Unicorn reports one no hook takes). Then it
// starts the next run from the same uc_emu_start, or stops after the last.
// Outside a chained batch it stops the run with UC_ERR_EXCEPTION, as if
// there were no hook.
static void on_intr(uc_engine *uc, uint32_t intno, void *user) {
	struct ftp_runner *r = user;
	if (!r->chain || r->hook_err != 0 || (r->abort != NULL && *r->abort)) {
		if (r->hook_err == 0) {
			r->hook_err = UC_ERR_EXCEPTION;
		}
		ftp_uc.uc_emu_stop(uc);
		return;
	}
	end_run(r, r->cur, intno == FTP_EXCP_BKPT ? UC_ERR_OK : UC_ERR_EXCEPTION, 0, intno == FTP_EXCP_BKPT);
	int next = r->cur + 1;
	if (next >= r->n) {
		r->cur = next;
		ftp_uc.uc_emu_stop(uc);
		return;
	}
	uc_err e = begin_run(r, next);
	if (e == UC_ERR_OK) {
		// Writing PC also makes Unicorn leave the current block.
		e = ftp_uc.uc_reg_write(uc, UC_ARM64_REG_PC, &r->runs[next].begin);
	}
	if (e != UC_ERR_OK) {
		r->hook_err = e;
		ftp_uc.uc_emu_stop(uc);
	}
}

// The watchdog: one thread for the process, started with the first batch,
// visits the runners in a batch every few milliseconds and stops a run
// that went past its timeout (wall clock) or its CPU slice, as
// ftp_runner_watch set them. It is C's, not a Go goroutine's: a Go timer
// ticking through the runs kept the Go scheduler from sleeping while every
// worker was in C (its threads woke and slept again at each tick and
// each return from C). With no runner in a batch it waits, ticking not.
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv; // on CLOCK_MONOTONIC: see watch_init
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static struct ftp_runner *watch_list;
static int watch_started;
static int64_t watch_cur_tick; // what the watchdog waits for; 0: a runner

static int64_t now_ns(clockid_t c) {
	struct timespec ts;
	if (clock_gettime(c, &ts) != 0) {
		return -1;
	}
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// watch_tick is how often the watchdog looks, for r: a quarter of its
// timeout, at least 0.5 ms, at most half its slice.
static int64_t watch_tick(const struct ftp_runner *r) {
	int64_t t = r->timeout_ns > 0 ? r->timeout_ns / 4 : INT64_MAX;
	if (t < 500000) {
		t = 500000;
	}
	if (r->slice_ns > 0 && t > r->slice_ns / 2) {
		t = r->slice_ns / 2;
	}
	return t;
}

// watch_one is the watchdog's look at r at now: it stops a run seen
// before that has gone on too long. The watch list's lock is held.
static void watch_one(struct ftp_runner *r, int64_t now) {
	uint64_t seq;
	int running;
	int64_t cpu;
	ftp_runner_poll(r, &seq, &running, &cpu);
	if (!running) {
		return;
	}
	if (!r->seen || r->seen_seq != seq) {
		r->seen = 1;
		r->seen_seq = seq;
		r->seen_wall = now;
		r->seen_cpu = cpu;
		return;
	}
	if (r->timeout_ns > 0 && now - r->seen_wall > r->timeout_ns) {
		ftp_runner_stop(r, seq, FTP_STOP_TIMEOUT);
	} else if (r->slice_ns > 0 && cpu >= 0 && r->seen_cpu >= 0 && cpu - r->seen_cpu > r->slice_ns) {
		ftp_runner_stop(r, seq, FTP_STOP_SLICE);
	} else if (r->slice_ns > 0 && (cpu < 0 || r->seen_cpu < 0) && now - r->seen_wall > r->slice_ns) {
		ftp_runner_stop(r, seq, FTP_STOP_SLICE);
	}
}

// watch_init makes watch_cv wait on the monotonic clock: a wall clock set
// back must not hold the watchdog (and a looping run) for as long.
static void watch_init(void) {
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&watch_cv, &a);
	pthread_condattr_destroy(&a);
}

static void *watch_loop(void *arg) {
	(void)arg;
	pthread_mutex_lock(&watch_mu);
	for (;;) {
		while (watch_list == NULL) {
			watch_cur_tick = 0;
			pthread_cond_wait(&watch_cv, &watch_mu);
		}
		int64_t tick = watch_tick(watch_list);
		for (struct ftp_runner *r = watch_list->watch_next; r != NULL; r = r->watch_next) {
			int64_t t = watch_tick(r);
			tick = t < tick ? t : tick;
		}
		watch_cur_tick = tick;
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		int64_t ns = dl.tv_nsec + tick % 1000000000;
		dl.tv_sec += tick / 1000000000 + ns / 1000000000;
		dl.tv_nsec = ns % 1000000000;
		// Until the tick, or a runner that needs a shorter one (watch_add).
		pthread_cond_timedwait(&watch_cv, &watch_mu, &dl);
		int64_t now = now_ns(CLOCK_MONOTONIC);
		for (struct ftp_runner *r = watch_list; r != NULL; r = r->watch_next) {
			watch_one(r, now);
		}
	}
	return NULL;
}

// watch_add puts r on the watch list for a batch (unless nothing limits
// its runs), starting the watchdog thread the first time. Without a thread
// (none could be started) runs are not stopped: the instruction count of
// budget runs still ends them.
static void watch_add(struct ftp_runner *r) {
	pthread_once(&watch_once, watch_init);
	pthread_mutex_lock(&watch_mu);
	if (r->timeout_ns <= 0 && r->slice_ns <= 0) {
		pthread_mutex_unlock(&watch_mu);
		return;
	}
	if (!watch_started) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		watch_started = pthread_create(&t, &a, watch_loop, NULL) == 0;
		pthread_attr_destroy(&a);
	}
	r->seen = 0;
	r->watch_next = watch_list;
	r->watch_prev = &watch_list;
	if (watch_list != NULL) {
		watch_list->watch_prev = &r->watch_next;
	}
	watch_list = r;
	if (watch_cur_tick == 0 || watch_tick(r) < watch_cur_tick) {
		pthread_cond_signal(&watch_cv);
	}
	pthread_mutex_unlock(&watch_mu);
}

// watch_remove takes r off the watch list after its batch: the watchdog
// then no longer touches it (its engine may be closed).
static void watch_remove(struct ftp_runner *r) {
	pthread_mutex_lock(&watch_mu);
	if (r->watch_prev == NULL) { // not on the list
		pthread_mutex_unlock(&watch_mu);
		return;
	}
	*r->watch_prev = r->watch_next;
	if (r->watch_next != NULL) {
		r->watch_next->watch_prev = r->watch_prev;
	}
	r->watch_next = NULL;
	r->watch_prev = NULL;
	pthread_mutex_unlock(&watch_mu);
}

// ftp_runner_watch sets what a run of r may take before the watchdog
// stops it: timeout_ns of wall clock, and slice_ns of its thread's CPU
// (0: no slice).
void ftp_runner_watch(struct ftp_runner *r, int64_t timeout_ns, int64_t slice_ns) {
	pthread_mutex_lock(&watch_mu);
	r->timeout_ns = timeout_ns;
	r->slice_ns = slice_ns;
	pthread_mutex_unlock(&watch_mu);
}

static int runner_batch(struct ftp_runner *r, struct ftp_run *runs, struct ftp_result *out, int n, uint64_t count, int flush, int chain);

// ftp_runner_batch runs runs[0..n) in order, each under the instruction
// count (0: none), first dropping the translations of [begin, until+4) when
// flush is set. It stops after a run the watchdog stopped or during which a
// Go hook panicked, and returns how many ran.
//
// With chain set (a runner made with chain, count 0, no flush), each run's
// stop address holds a BRK: the runs follow one another inside one
// uc_emu_start (see on_intr), which spares a start per run and Unicorn's
// invalidation of the blocks at the stop address after each. A run that
// ends otherwise (an emulation error, the watchdog) ends that
// uc_emu_start; the next run starts a new one.
int ftp_runner_batch(struct ftp_runner *r, struct ftp_run *runs, struct ftp_result *out, int n, uint64_t count, int flush, int chain) {
	clockid_t c;
	__atomic_store_n(&r->clock, pthread_getcpuclockid(pthread_self(), &c) == 0 ? (int64_t)c << 1 | 1 : 0, __ATOMIC_RELEASE);
	watch_add(r);
	int done = runner_batch(r, runs, out, n, count, flush, chain);
	watch_remove(r);
	return done;
}

static int runner_batch(struct ftp_runner *r, struct ftp_run *runs, struct ftp_result *out, int n, uint64_t count, int flush, int chain) {
	r->runs = runs;
	r->out = out;
	r->n = n;
	r->chain = chain && r->has_intr && count == 0 && !flush;
	int i = 0;
	while (i < n) {
		struct ftp_run *run = &runs[i];
		if (flush) {
			ftp_uc.uc_ctl(r->uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), run->begin, run->until + 4);
		}
		uc_err e = begin_run(r, i);
		if (e == UC_ERR_OK) {
			// Chained runs stop at their BRKs, never at until: 0 is
			// no address a run reaches normally.
			e = ftp_uc.uc_emu_start(r->uc, run->begin, r->chain ? 0 : run->until, 0, count);
		}
		int k = r->cur; // the run in progress when uc_emu_start returned
		if (k >= n) {
			r->chain = 0;
			return n;
		}
		end_run(r, k, e, 1, 0);
		if (out[k].stopped || out[k].aborted) {
			r->chain = 0;
			return k + 1;
		}
		i = k + 1;
	}
	r->chain = 0;
	return n;
}

// ftp_runner_poll reports the runs started, whether one is running, and the
// CPU time of the thread running the batch (-1 when unknown).
void ftp_runner_poll(struct ftp_runner *r, uint64_t *seq, int *running, int64_t *cpu_ns) {
	uint64_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
	*seq = st >> RUN_SEQ_SHIFT;
	*running = (st & RUN_RUNNING) != 0;
	*cpu_ns = -1;
	struct timespec ts;
	int64_t c = __atomic_load_n(&r->clock, __ATOMIC_ACQUIRE);
	if ((c & 1) != 0 && clock_gettime((clockid_t)(c >> 1), &ts) == 0) {
		*cpu_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
}

// ftp_runner_stop stops run seq if it is still running: it puts why in
// the run's state, which end_run takes out as it ends the run (one atomic
// exchange), then asks Unicorn to stop. A run that ends first keeps no
// why and is not stopped; asked again while the same run goes on (the
// watchdog's next look), it asks Unicorn again. Unicorn may be asked after
// the run has ended: the watchdog calls it with the watch list's lock held,
// which the batch takes before it returns (watch_remove), so the request
// cannot reach a later batch; another caller must not start one until it
// has returned.
void ftp_runner_stop(struct ftp_runner *r, uint64_t seq, uint32_t why) {
	uint64_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
	for (;;) {
		if (st >> RUN_SEQ_SHIFT != seq || (st & RUN_RUNNING) == 0) {
			return;
		}
		uint64_t with = (st & ~((uint64_t)RUN_WHY_MASK << RUN_WHY_SHIFT)) | (uint64_t)(why & RUN_WHY_MASK) << RUN_WHY_SHIFT;
		if (__atomic_compare_exchange_n(&r->state, &st, with, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			break;
		}
	}
	ftp_uc.uc_emu_stop(r->uc);
}
