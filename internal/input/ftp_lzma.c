//go:build cgo

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "ftp_lzma.h"

static struct {
	lzma_ret (*stream_decoder)(lzma_stream *, uint64_t, uint32_t);
	lzma_ret (*code)(lzma_stream *, lzma_action);
	void (*end)(lzma_stream *);
} fn;

static char load_err[512];

const char *ftp_lzma_load(const char *name) {
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(load_err, sizeof load_err, "%s", dlerror());
		return load_err;
	}
	void *sd = dlsym(lib, "lzma_stream_decoder");
	void *code = dlsym(lib, "lzma_code");
	void *end = dlsym(lib, "lzma_end");
	if (sd == NULL || code == NULL || end == NULL) {
		snprintf(load_err, sizeof load_err, "%s: missing lzma_stream_decoder, lzma_code or lzma_end", name);
		dlclose(lib);
		return load_err;
	}
	// POSIX allows converting dlsym's void * to a function pointer.
	fn.stream_decoder = (lzma_ret (*)(lzma_stream *, uint64_t, uint32_t))sd;
	fn.code = (lzma_ret (*)(lzma_stream *, lzma_action))code;
	fn.end = (void (*)(lzma_stream *))end;
	return NULL;
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
