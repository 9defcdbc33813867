// SPDX-License-Identifier: Apache-2.0
//go:build cgo

#include <stdlib.h>
#include "ftp_zlib.h"

static struct {
	int (*init2)(z_stream *, int, const char *, int);
	int (*inflate)(z_stream *, int);
	int (*reset)(z_stream *);
	int (*end)(z_stream *);
} fn;

void ftp_zlib_bind(void *const *syms) {
	// POSIX allows converting dlsym's void * to a function pointer.
	fn.init2 = (int (*)(z_stream *, int, const char *, int))syms[0];
	fn.inflate = (int (*)(z_stream *, int))syms[1];
	fn.reset = (int (*)(z_stream *))syms[2];
	fn.end = (int (*)(z_stream *))syms[3];
}

z_stream *ftp_zlib_new(void) {
	z_stream *s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	// 16 + 15: a gzip wrapper (not zlib's, not raw deflate), any window.
	if (fn.init2(s, 16 + MAX_WBITS, ZLIB_VERSION, (int)sizeof(z_stream)) != Z_OK) {
		free(s);
		return NULL;
	}
	return s;
}

void ftp_zlib_free(z_stream *s) {
	fn.end(s);
	free(s);
}

int ftp_zlib_start(z_stream *s) { return fn.reset(s); }

struct ftp_zlib_res ftp_zlib_run(z_stream *s, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len) {
	s->next_in = (Bytef *)in;
	s->avail_in = (uInt)in_len;
	s->next_out = out;
	s->avail_out = (uInt)out_len;
	struct ftp_zlib_res r;
	r.ret = fn.inflate(s, Z_NO_FLUSH);
	r.in_used = in_len - s->avail_in;
	r.out_used = out_len - s->avail_out;
	r.msg = r.ret < 0 && r.ret != Z_BUF_ERROR ? s->msg : NULL;
	s->next_in = NULL;
	s->avail_in = 0;
	s->next_out = NULL;
	s->avail_out = 0;
	return r;
}
