// SPDX-License-Identifier: Apache-2.0
//go:build cgo

#include <stdlib.h>
#include "ftp_lzma.h"

static struct {
	lzma_ret (*stream_decoder)(lzma_stream *, uint64_t, uint32_t);
	lzma_ret (*code)(lzma_stream *, lzma_action);
	void (*end)(lzma_stream *);
} fn;

void ftp_lzma_bind(void *const *syms) {
	// POSIX allows converting dlsym's void * to a function pointer.
	fn.stream_decoder = (lzma_ret (*)(lzma_stream *, uint64_t, uint32_t))syms[0];
	fn.code = (lzma_ret (*)(lzma_stream *, lzma_action))syms[1];
	fn.end = (void (*)(lzma_stream *))syms[2];
}

lzma_stream *ftp_lzma_new(void) {
	lzma_stream *s = malloc(sizeof *s);
	if (s != NULL) {
		lzma_stream init = LZMA_STREAM_INIT;
		*s = init;
	}
	return s;
}

void ftp_lzma_free(lzma_stream *s) {
	fn.end(s);
	free(s);
}

int ftp_lzma_start(lzma_stream *s, uint64_t memlimit) {
	// Reusing s keeps the coder and its dictionary when the next stream
	// needs the same size.
	return fn.stream_decoder(s, memlimit, LZMA_CONCATENATED);
}

struct ftp_lzma_res ftp_lzma_run(lzma_stream *s, const uint8_t *in, size_t in_len,
	uint8_t *out, size_t out_len, int finish) {
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	struct ftp_lzma_res r;
	r.ret = fn.code(s, finish ? LZMA_FINISH : LZMA_RUN);
	r.in_used = in_len - s->avail_in;
	r.out_used = out_len - s->avail_out;
	s->next_in = NULL;
	s->avail_in = 0;
	s->next_out = NULL;
	s->avail_out = 0;
	return r;
}
