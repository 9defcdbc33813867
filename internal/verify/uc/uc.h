// SPDX-License-Identifier: Apache-2.0
// The C side of package uc. libunicorn is not linked: package dl dlopens it
// on first use and ftp_uc_bind fills ftp_uc with the entry points this package calls, so
// programs that never emulate do not pay for loading it at start-up. Every
// call into Unicorn goes through ftp_uc, by way of the wrappers below (cgo
// cannot call through a function pointer).
#ifndef FTPATCH_UC_H
#define FTPATCH_UC_H
#include <stdint.h>
#include <unicorn/unicorn.h>

// FTP_UC_FUNCS lists every uc_* function the package calls. Adding a call
// means adding it here; using the function directly would reinstate the
// link-time dependency (or fail to link).
#define FTP_UC_FUNCS(X) \
	X(uc_version) \
	X(uc_strerror) \
	X(uc_open) \
	X(uc_close) \
	X(uc_query) \
	X(uc_ctl) \
	X(uc_mem_map) \
	X(uc_mem_map_ptr) \
	X(uc_mem_protect) \
	X(uc_mem_unmap) \
	X(uc_mem_read) \
	X(uc_mem_write) \
	X(uc_reg_read) \
	X(uc_reg_write) \
	X(uc_reg_read_batch) \
	X(uc_reg_write_batch) \
	X(uc_emu_start) \
	X(uc_emu_stop) \
	X(uc_hook_add) \
	X(uc_hook_del)

// ftp_uc holds the resolved entry points, each typed as the header declares
// it. It is written once, by a successful ftp_uc_bind, before any is called.
struct ftp_uc_table {
#define FTP_UC_FIELD(f) __typeof__(f) *f;
	FTP_UC_FUNCS(FTP_UC_FIELD)
#undef FTP_UC_FIELD
};
extern struct ftp_uc_table ftp_uc;

// ftp_uc_names are the names of FTP_UC_FUNCS, in order.
extern const char *const ftp_uc_names[];
extern const int ftp_uc_nnames;

// ftp_uc_bind fills ftp_uc from syms, the addresses of ftp_uc_names in
// order, if the library's API major is UC_API_MAJOR, and returns 1; else it
// leaves ftp_uc as it was, stores the library's version in *major and
// *minor, and returns 0.
int ftp_uc_bind(void *const *syms, unsigned *major, unsigned *minor);

uc_err ftp_hook_add_code(uc_engine *uc, uc_hook *h, int type, uintptr_t user, uint64_t begin, uint64_t end);
uc_err ftp_hook_add_mem_invalid(uc_engine *uc, uc_hook *h, int type, uintptr_t user, uint64_t begin, uint64_t end);
uc_err ftp_tb_flush(uc_engine *uc);
uc_err ftp_tb_remove(uc_engine *uc, uint64_t begin, uint64_t end);

// Wrappers through ftp_uc for the Go side; static inline, so the call
// through the pointer is made straight from cgo's own stub.
static inline const char *ftp_uc_strerror(uc_err e) { return ftp_uc.uc_strerror(e); }
static inline uc_err ftp_uc_open(uc_arch a, uc_mode m, uc_engine **uc) { return ftp_uc.uc_open(a, m, uc); }
static inline uc_err ftp_uc_close(uc_engine *uc) { return ftp_uc.uc_close(uc); }
static inline uc_err ftp_uc_query(uc_engine *uc, uc_query_type t, size_t *r) { return ftp_uc.uc_query(uc, t, r); }
static inline uc_err ftp_uc_mem_map(uc_engine *uc, uint64_t a, size_t n, uint32_t p) { return ftp_uc.uc_mem_map(uc, a, n, p); }
static inline uc_err ftp_uc_mem_map_ptr(uc_engine *uc, uint64_t a, size_t n, uint32_t p, void *ptr) { return ftp_uc.uc_mem_map_ptr(uc, a, n, p, ptr); }
static inline uc_err ftp_uc_mem_protect(uc_engine *uc, uint64_t a, size_t n, uint32_t p) { return ftp_uc.uc_mem_protect(uc, a, n, p); }
static inline uc_err ftp_uc_mem_unmap(uc_engine *uc, uint64_t a, size_t n) { return ftp_uc.uc_mem_unmap(uc, a, n); }
static inline uc_err ftp_uc_mem_read(uc_engine *uc, uint64_t a, void *b, size_t n) { return ftp_uc.uc_mem_read(uc, a, b, n); }
static inline uc_err ftp_uc_mem_write(uc_engine *uc, uint64_t a, const void *b, size_t n) { return ftp_uc.uc_mem_write(uc, a, b, n); }
static inline uc_err ftp_uc_reg_read(uc_engine *uc, int r, void *v) { return ftp_uc.uc_reg_read(uc, r, v); }
static inline uc_err ftp_uc_reg_write(uc_engine *uc, int r, const void *v) { return ftp_uc.uc_reg_write(uc, r, v); }
static inline uc_err ftp_uc_reg_read_batch(uc_engine *uc, int *r, void **v, int n) { return ftp_uc.uc_reg_read_batch(uc, r, v, n); }
static inline uc_err ftp_uc_reg_write_batch(uc_engine *uc, int *r, void *const *v, int n) { return ftp_uc.uc_reg_write_batch(uc, r, v, n); }
static inline uc_err ftp_uc_emu_start(uc_engine *uc, uint64_t b, uint64_t u, uint64_t t, size_t c) { return ftp_uc.uc_emu_start(uc, b, u, t, c); }
static inline uc_err ftp_uc_emu_stop(uc_engine *uc) { return ftp_uc.uc_emu_stop(uc); }
static inline uc_err ftp_uc_hook_del(uc_engine *uc, uc_hook h) { return ftp_uc.uc_hook_del(uc, h); }

#endif
