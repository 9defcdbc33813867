// SPDX-License-Identifier: Apache-2.0
//go:build cgo

#include "ftp_zstd.h"

// From zstd.h (stable API): the buffers ZSTD_decompressStream moves
// through, and the values of the parameters set here.
typedef struct {
	const void *src;
	size_t size;
	size_t pos;
} zstd_in;
typedef struct {
	void *dst;
	size_t size;
	size_t pos;
} zstd_out;
enum {
	ZSTD_reset_session_only = 1, // ZSTD_ResetDirective
	ZSTD_d_windowLogMax = 100,   // ZSTD_dParameter
};

static struct {
	void *(*create)(void);
	size_t (*free)(void *);
	size_t (*reset)(void *, int);
	size_t (*set_param)(void *, int, int);
	size_t (*decompress_stream)(void *, zstd_out *, zstd_in *);
	unsigned (*is_error)(size_t);
	int (*error_code)(size_t);
	const char *(*error_name)(size_t);
} fn;

void ftp_zstd_bind(void *const *syms) {
	// POSIX allows converting dlsym's void * to a function pointer.
	fn.create = (void *(*)(void))syms[0];
	fn.free = (size_t (*)(void *))syms[1];
	fn.reset = (size_t (*)(void *, int))syms[2];
	fn.set_param = (size_t (*)(void *, int, int))syms[3];
	fn.decompress_stream = (size_t (*)(void *, zstd_out *, zstd_in *))syms[4];
	fn.is_error = (unsigned (*)(size_t))syms[5];
	fn.error_code = (int (*)(size_t))syms[6];
	fn.error_name = (const char *(*)(size_t))syms[7];
}

ftp_zstd *ftp_zstd_new(void) { return (ftp_zstd *)fn.create(); }

void ftp_zstd_free(ftp_zstd *z) { fn.free(z); }

int ftp_zstd_start(ftp_zstd *z, int window_log_max) {
	size_t r = fn.reset(z, ZSTD_reset_session_only);
	if (!fn.is_error(r))
		r = fn.set_param(z, ZSTD_d_windowLogMax, window_log_max);
	return fn.is_error(r) ? fn.error_code(r) : 0;
}

struct ftp_zstd_res ftp_zstd_run(ftp_zstd *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len) {
	zstd_in i = {in, in_len, 0};
	zstd_out o = {out, out_len, 0};
	struct ftp_zstd_res r = {0};
	size_t ret = fn.decompress_stream(z, &o, &i);
	r.in_used = i.pos;
	r.out_used = o.pos;
	if (fn.is_error(ret)) {
		r.err = fn.error_code(ret);
		r.msg = fn.error_name(ret);
	} else {
		r.frame_end = ret == 0;
	}
	return r;
}
