// SPDX-License-Identifier: Apache-2.0
// verify-floor: the emulator floor of `ftpatch verify`, for `make bench`.
//
//   verify-floor [-j N] PLAN IMAGE
//
// It does only the emulator work verify's promise needs, the way verify
// drives Debian's libunicorn 2.0.x (loaded as verify loads it: dlopen of
// libunicorn.so.2, then libunicorn.so): map the image's regions once, and
// run each site of PLAN (written by scripts/floorplan from verify's own
// loader, see internal/verify/floorplan.go) from its entry to its stop
// address with seeded registers, the runs chained through the BRKs the
// plan lists, the op->func calls intercepted by a code hook, then check
// what the run did as verify does (nop: no call, every register unchanged;
// init: X9 = the parent; enabled: one call with ip, parent_ip and op right,
// X0-X8, X19-X30 and SP unchanged). No ELF, no Go, no report: what verify
// costs beyond this program is what verify adds to the emulator.
//
// Sites run on N threads (default: the number of CPUs), one engine each,
// taking as many sites at a time, and replacing the engine as often, as
// verify's workers do (the plan says how many). It prints the number
// of sites, passed and failed, and exits 1 when a site failed (the bench
// checks the floor passes what verify passes), 2 on bad input.
//
// Built by scripts/bench.sh with the system cc against libunicorn-dev's
// headers only: like verify, it has no link-time dependency on the library.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unicorn/unicorn.h>

// The seeding and the checks of a run: verify's own (one copy).
#include "../internal/verify/uc/check.h"

// verify's populateChunk (internal/verify/stops.go).
#define POPULATE_CHUNK (256u << 10)

// The libunicorn entry points the floor calls, resolved with dlsym.
#define FLOOR_UC_FUNCS(X) \
	X(uc_version)         \
	X(uc_open)            \
	X(uc_close)           \
	X(uc_strerror)        \
	X(uc_mem_map)         \
	X(uc_mem_map_ptr)     \
	X(uc_reg_read_batch)  \
	X(uc_reg_write_batch) \
	X(uc_reg_write)       \
	X(uc_emu_start)       \
	X(uc_emu_stop)        \
	X(uc_hook_add)        \
	X(uc_ctl)

static struct {
#define FLOOR_FIELD(f) __typeof__(f) *f;
	FLOOR_UC_FUNCS(FLOOR_FIELD)
#undef FLOOR_FIELD
} uc;

#define STR_(x) #x
#define STR(x) STR_(x)

static void die(int code, const char *fmt, const char *arg) {
	fprintf(stderr, "verify-floor: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(code);
}

// load_unicorn opens libunicorn as package dl does for verify: the SONAME
// of the API major the headers are for, then the unversioned name.
static void load_unicorn(void) {
	const char *names[] = {"libunicorn.so." STR(UC_API_MAJOR), "libunicorn.so"};
	void *lib = NULL;
	for (size_t i = 0; i < 2 && lib == NULL; i++) {
		lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	}
	if (lib == NULL) {
		die(2, "cannot load libunicorn: %s", dlerror());
	}
#define FLOOR_BIND(f)                                   \
	if ((*(void **)&uc.f = dlsym(lib, #f)) == NULL) \
		die(2, "libunicorn has no %s", #f);
	FLOOR_UC_FUNCS(FLOOR_BIND)
#undef FLOOR_BIND
	unsigned major = 0, minor = 0;
	uc.uc_version(&major, &minor);
	if (major != UC_API_MAJOR) {
		die(2, "libunicorn is not %s.x", STR(UC_API_MAJOR));
	}
}

// The plan (internal/verify/floorplan.go has its layout).
struct region {
	uint64_t addr, size, prot, blob;
};
struct piece {
	uint64_t vaddr, off, len;
};
struct write {
	uint64_t addr, len, blob;
};
struct site {
	uint64_t entry, until, call_site, op, index, flags;
};
#define NO_BLOB UINT64_MAX

static struct {
	uint64_t sentinel, stack_base, stack_size, ret_reg, seed, chunk, recycle, pop_lo, pop_hi;
	uint64_t nregions, npieces, nwrites, nfuncs, nret_traps, nsites, nblob;
	struct region *regions;
	struct piece *pieces;
	struct write *writes;
	uint64_t *funcs, *ret_traps;
	struct site *sites;
	uint8_t *blob;
	void **mem; // each region's host memory
} plan;

// map_file maps the file at path read-only and returns it and its size.
static void *map_file(const char *path, size_t *n) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		die(2, "%s: cannot open", path);
	}
	off_t size = lseek(fd, 0, SEEK_END);
	void *b = size > 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	if (b == MAP_FAILED) {
		die(2, "%s: cannot read", path);
	}
	close(fd);
	*n = size;
	return b;
}

static void read_plan(const char *path) {
	size_t n;
	uint8_t *b = map_file(path, &n);
	uint64_t *h = (uint64_t *)(b + 8);
	if (n < 8 + 17 * 8 || memcmp(b, "ftpfloor", 8) != 0 || h[0] != 4) {
		die(2, "%s: not a floor plan (version 4)", path);
	}
	plan.sentinel = h[1], plan.stack_base = h[2], plan.stack_size = h[3], plan.ret_reg = h[4], plan.seed = h[5];
	plan.chunk = h[6], plan.recycle = h[7], plan.pop_lo = h[8], plan.pop_hi = h[9];
	plan.nregions = h[10], plan.npieces = h[11], plan.nwrites = h[12], plan.nfuncs = h[13];
	plan.nret_traps = h[14], plan.nsites = h[15], plan.nblob = h[16];
	uint64_t *p = h + 17;
	size_t words = plan.nregions * 4 + plan.npieces * 3 + plan.nwrites * 3 + plan.nfuncs + plan.nret_traps + plan.nsites * 6;
	if (n != 8 + 17 * 8 + words * 8 + plan.nblob || plan.chunk == 0) {
		die(2, "%s: truncated floor plan", path);
	}
	plan.regions = (struct region *)p, p += plan.nregions * 4;
	plan.pieces = (struct piece *)p, p += plan.npieces * 3;
	plan.writes = (struct write *)p, p += plan.nwrites * 3;
	plan.funcs = p, p += plan.nfuncs;
	plan.ret_traps = p, p += plan.nret_traps;
	plan.sites = (struct site *)p, p += plan.nsites * 6;
	plan.blob = (uint8_t *)p;
}

// region_of returns the host address of [addr, addr+n), or NULL.
static uint8_t *host(uint64_t addr, uint64_t n) {
	for (uint64_t i = 0; i < plan.nregions; i++) {
		struct region *r = &plan.regions[i];
		if (addr >= r->addr && addr - r->addr <= r->size && n <= r->size - (addr - r->addr)) {
			return (uint8_t *)plan.mem[i] + (addr - r->addr);
		}
	}
	return NULL;
}

// place puts the n bytes of the file at off into dst as verify's loader
// does (internal/verify/image.go, placeFile): the whole host pages mapped
// from the file copy-on-write when dst and off are congruent modulo the page
// size, the rest read.
static int place(uint8_t *dst, uint64_t n, int fd, uint64_t off) {
	uint64_t hp = (uint64_t)sysconf(_SC_PAGESIZE), a = (uint64_t)(uintptr_t)dst;
	if (n >= hp && (a - off) % hp == 0) {
		uint64_t lo = (a + hp - 1) / hp * hp, hi = (a + n) / hp * hp;
		if (lo < hi && mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off + lo - a) != MAP_FAILED) {
			uint64_t head = lo - a, tail = a + n - hi;
			return (head == 0 || pread(fd, dst, head, off) == (ssize_t)head) &&
			       (tail == 0 || pread(fd, dst + n - tail, tail, off + n - tail) == (ssize_t)tail);
		}
	}
	return pread(fd, dst, n, off) == (ssize_t)n;
}

// map_image lays the image out in host memory, as verify's loader does:
// each region anonymous memory, the file's pieces placed in it, then the
// words verify writes over them.
static void map_image(const char *image) {
	int fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		die(2, "%s: cannot open", image);
	}
	plan.mem = calloc(plan.nregions, sizeof *plan.mem);
	for (uint64_t i = 0; i < plan.nregions; i++) {
		struct region *r = &plan.regions[i];
		void *m = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			die(2, "%s: cannot map a region", image);
		}
		if (r->blob != NO_BLOB) {
			memcpy(m, plan.blob + r->blob, r->size);
		}
		plan.mem[i] = m;
	}
	for (uint64_t i = 0; i < plan.npieces; i++) {
		struct piece *p = &plan.pieces[i];
		uint8_t *dst = host(p->vaddr, p->len);
		if (dst == NULL || !place(dst, p->len, fd, p->off)) {
			die(2, "%s: cannot read a piece", image);
		}
	}
	close(fd);
	// The pages that take BRKs copied in a chunk at a time, each chunk's
	// writes (its BRKs) made right after, while its pages are in the
	// caches, as verify's plantAll does (best effort); then every other
	// write. The plan's writes are in address order (floorplan.go).
	uint8_t *done = calloc(plan.nwrites ? plan.nwrites : 1, 1);
	if (done == NULL) {
		die(2, "%s", "out of memory");
	}
	uint64_t hp = (uint64_t)sysconf(_SC_PAGESIZE), k = 0;
	for (uint64_t i = 0; i < plan.nregions; i++) {
		struct region *r = &plan.regions[i];
		uint64_t a = plan.pop_lo > r->addr ? plan.pop_lo : r->addr;
		uint64_t b = plan.pop_hi < r->addr + r->size ? plan.pop_hi : r->addr + r->size;
		if (!(r->prot & UC_PROT_EXEC) || a >= b) {
			continue;
		}
		for (uint64_t c = a & ~(hp - 1); c < b; c += POPULATE_CHUNK) {
			uint64_t e = c + POPULATE_CHUNK < b ? c + POPULATE_CHUNK : b;
			madvise((uint8_t *)plan.mem[i] + (c - r->addr), e - c, 23 /* MADV_POPULATE_WRITE */);
			for (; k < plan.nwrites && plan.writes[k].addr + plan.writes[k].len <= e; k++) {
				struct write *w = &plan.writes[k];
				uint8_t *dst = w->addr >= c ? host(w->addr, w->len) : NULL;
				if (dst != NULL) {
					memcpy(dst, plan.blob + w->blob, w->len);
					done[k] = 1;
				}
			}
		}
	}
	for (uint64_t i = 0; i < plan.nwrites; i++) {
		struct write *w = &plan.writes[i];
		uint8_t *dst = host(w->addr, w->len);
		if (dst == NULL) {
			die(2, "%s: a write outside the image", image);
		}
		if (!done[i]) {
			memcpy(dst, plan.blob + w->blob, w->len);
		}
	}
	free(done);
}

#define NIN FTP_NIN
#define NOUT FTP_NOUT
#define RSP FTP_SP
#define RPC FTP_PC

static int regs_id[NOUT];

// worker is one thread's engine and the run in progress.
struct worker {
	uc_engine *uc;
	void *ptr_in[NIN], *ptr_out[NOUT];
	uint64_t in[NIN], out[NOUT];
	struct site *s; // the run in progress
	uint64_t lo, hi, next; // the chunk being run, the site after s
	uint32_t calls;
	int entered; // the run's first instruction has run
	uint64_t args[3];
	uint64_t passed, failed;
};

static int in_set(const uint64_t *set, uint64_t n, uint64_t a) {
	uint64_t lo = 0, hi = n;
	while (lo < hi) {
		uint64_t m = lo + (hi - lo) / 2;
		if (set[m] < a) {
			lo = m + 1;
		} else {
			hi = m;
		}
	}
	return lo < n && set[lo] == a;
}

// begin sets up the run of site i: its registers, the hook's state.
static uc_err begin(struct worker *w, uint64_t i) {
	w->s = &plan.sites[i];
	w->next = i + 1;
	w->calls = 0;
	w->entered = 0;
	memset(w->args, 0, sizeof w->args);
	ftp_seed_regs(plan.seed, w->s->index, w->in);
	w->in[30] = plan.sentinel;
	w->in[RSP] = plan.stack_base + plan.stack_size / 2;
	return uc.uc_reg_write_batch(w->uc, regs_id, w->ptr_in, NIN);
}

// end reads the registers of the run that just ended (trapped: at a BRK of
// a chained run) and judges it.
static void end(struct worker *w, int trapped) {
	if (uc.uc_reg_read_batch(w->uc, regs_id, w->ptr_out, NOUT) != UC_ERR_OK) {
		w->failed++;
		return;
	}
	// A trap over a tool trampoline's RET X9, with X9 = the stop address,
	// is that RET returning there.
	struct site *s = w->s;
	if (trapped && w->out[RPC] != s->until && w->out[plan.ret_reg] == s->until &&
	    in_set(plan.ret_traps, plan.nret_traps, w->out[RPC])) {
		w->out[RPC] = s->until;
	}
	if (ftp_judge((int)(s->flags & 0xff), s->until, s->call_site, s->op, plan.sentinel, w->in, w->out, w->calls, w->args)) {
		w->passed++;
	} else {
		w->failed++;
	}
}

static int chained(uint64_t i) { return plan.sites[i].flags >> 8 & 1; }

// on_func records a call of op->func and returns from it at once.
static void on_func(uc_engine *u, uint64_t addr, uint32_t size, void *user) {
	struct worker *w = user;
	(void)size;
	if (!in_set(plan.funcs, plan.nfuncs, addr)) {
		return;
	}
	if (!w->entered) {
		w->entered = 1;
		if (addr == w->s->entry) {
			return;
		}
	}
	w->calls++;
	int ids[4] = {UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2, UC_ARM64_REG_X30};
	uint64_t v[4];
	void *p[4] = {&v[0], &v[1], &v[2], &v[3]};
	uc.uc_reg_read_batch(u, ids, p, 4);
	memcpy(w->args, v, sizeof w->args);
	uc.uc_reg_write(u, UC_ARM64_REG_PC, &v[3]);
}

// on_intr ends a chained run at its BRK and starts the next chained one
// of the chunk from there.
static void on_intr(uc_engine *u, uint32_t intno, void *user) {
	struct worker *w = user;
	end(w, intno == 7); // EXCP_BKPT: see batch.h
	if (w->next >= w->hi || !chained(w->next)) {
		uc.uc_emu_stop(u);
		return;
	}
	if (begin(w, w->next) != UC_ERR_OK || uc.uc_reg_write(u, UC_ARM64_REG_PC, &w->s->entry) != UC_ERR_OK) {
		uc.uc_emu_stop(u);
	}
}

static _Atomic uint64_t next_chunk;

// engine_open makes w's engine as verify's newEngine does: the stack first,
// then the regions, the op->func hooks and the interrupt hook.
static void engine_open(struct worker *w) {
	if (uc.uc_open(UC_ARCH_ARM64, UC_MODE_ARM, &w->uc) != UC_ERR_OK) {
		die(2, "%s", "uc_open failed");
	}
	// The stack first, as verify maps it (internal/verify/image.go,
	// stackSize): alone in its window of RAM offsets, a store costs Unicorn
	// 2.0.1's not-dirty path less.
	if (uc.uc_mem_map(w->uc, plan.stack_base, plan.stack_size, UC_PROT_READ | UC_PROT_WRITE) != UC_ERR_OK) {
		die(2, "%s", "mapping the stack failed");
	}
	for (uint64_t i = 0; i < plan.nregions; i++) {
		struct region *r = &plan.regions[i];
		if (uc.uc_mem_map_ptr(w->uc, r->addr, r->size, r->prot, plan.mem[i]) != UC_ERR_OK) {
			die(2, "%s", "uc_mem_map_ptr failed");
		}
	}
	uc_hook h;
	if (plan.nfuncs > 0 && plan.nfuncs <= 256) {
		for (uint64_t i = 0; i < plan.nfuncs; i++) {
			uc.uc_hook_add(w->uc, &h, UC_HOOK_CODE, (void *)on_func, w, plan.funcs[i], plan.funcs[i]);
		}
	} else if (plan.nfuncs > 0) {
		uc.uc_hook_add(w->uc, &h, UC_HOOK_CODE, (void *)on_func, w, plan.funcs[0], plan.funcs[plan.nfuncs - 1]);
	}
	uc.uc_hook_add(w->uc, &h, UC_HOOK_INTR, (void *)on_intr, w, 1, 0);
}

// work runs chunks of sites until none is left, replacing its engine every
// plan.recycle sites as verify's runPool does.
static void *work(void *arg) {
	struct worker *w = arg;
	for (int k = 0; k < NIN; k++) {
		w->ptr_in[k] = &w->in[k];
	}
	for (int k = 0; k < NOUT; k++) {
		w->ptr_out[k] = &w->out[k];
	}
	engine_open(w);
	uint64_t ran = 0;
	for (;;) {
		w->lo = atomic_fetch_add(&next_chunk, plan.chunk);
		if (w->lo >= plan.nsites) {
			break;
		}
		w->hi = w->lo + plan.chunk < plan.nsites ? w->lo + plan.chunk : plan.nsites;
		for (uint64_t i = w->lo; i < w->hi;) {
			// A chained run goes on into the next chained ones from its
			// trap (on_intr); any other stops at its until.
			if (begin(w, i) != UC_ERR_OK) {
				w->failed++;
				i++;
				continue;
			}
			uc_err e = uc.uc_emu_start(w->uc, w->s->entry, chained(i) ? 0 : w->s->until, 0, 0);
			if (!chained(i) || e != UC_ERR_OK) {
				end(w, 0);
			}
			i = w->next;
		}
		if ((ran += w->hi - w->lo) >= plan.recycle && w->hi < plan.nsites) {
			uc.uc_close(w->uc);
			engine_open(w);
			ran = 0;
		}
	}
	uc.uc_close(w->uc);
	return NULL;
}

int main(int argc, char **argv) {
	int jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int a = 1;
	if (argc > 2 && strcmp(argv[1], "-j") == 0) {
		jobs = atoi(argv[2]);
		a = 3;
	} else if (argc > 1 && strncmp(argv[1], "-j", 2) == 0) {
		jobs = atoi(argv[1] + 2);
		a = 2;
	}
	if (argc - a != 2 || jobs < 1) {
		fprintf(stderr, "usage: verify-floor [-j N] PLAN IMAGE\n");
		return 2;
	}
	load_unicorn();
	read_plan(argv[a]);
	map_image(argv[a + 1]);
	regs_id[0] = UC_ARM64_REG_X0;
	for (int i = 0; i <= 28; i++) {
		regs_id[i] = UC_ARM64_REG_X0 + i;
	}
	regs_id[29] = UC_ARM64_REG_X29;
	regs_id[30] = UC_ARM64_REG_X30;
	regs_id[RSP] = UC_ARM64_REG_SP;
	regs_id[FTP_NZCV] = UC_ARM64_REG_NZCV;
	regs_id[RPC] = UC_ARM64_REG_PC;
	if ((uint64_t)jobs > (plan.nsites + 255) / 256) {
		jobs = (int)((plan.nsites + 255) / 256);
	}
	if (jobs < 1) {
		jobs = 1;
	}
	struct worker *ws = calloc(jobs, sizeof *ws);
	pthread_t *ts = calloc(jobs, sizeof *ts);
	for (int i = 1; i < jobs; i++) {
		pthread_create(&ts[i], NULL, work, &ws[i]);
	}
	work(&ws[0]);
	uint64_t passed = ws[0].passed, failed = ws[0].failed;
	for (int i = 1; i < jobs; i++) {
		pthread_join(ts[i], NULL);
		passed += ws[i].passed;
		failed += ws[i].failed;
	}
	printf("floor: %llu sites: %llu passed, %llu failed (%d workers)\n", (unsigned long long)plan.nsites,
	       (unsigned long long)passed, (unsigned long long)failed, jobs);
	return failed > 0 ? 1 : 0;
}
