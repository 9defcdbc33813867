// SPDX-License-Identifier: Apache-2.0
// liblzma, loaded with dlopen on first use by package dl (see lzma_cgo.go):
// the binary does not link it, so it starts on a system without it and falls
// back to the pure-Go decoder. Only the types and constants come from
// <lzma.h>.
#ifndef FTP_LZMA_H
#define FTP_LZMA_H
#include <stddef.h>
#include <stdint.h>
#include <lzma.h>

// ftp_lzma_bind stores the functions used here from syms, the addresses
// package dl resolved, in the order of lzmaLib's Symbols (lzma_cgo.go).
void ftp_lzma_bind(void *const *syms);

lzma_stream *ftp_lzma_new(void);
void ftp_lzma_free(lzma_stream *s);

// ftp_lzma_start starts decoding a new .xz stream (concatenated streams
// allowed, as xz -d does) on s, refusing headers needing more than memlimit.
int ftp_lzma_start(lzma_stream *s, uint64_t memlimit);

struct ftp_lzma_res {
	int ret;
	size_t in_used, out_used;
};

// ftp_lzma_run decodes from in into out once (lzma_code); finish says that
// in holds the end of the input. The stream keeps no pointer to in or out.
struct ftp_lzma_res ftp_lzma_run(lzma_stream *s, const uint8_t *in, size_t in_len,
	uint8_t *out, size_t out_len, int finish);
#endif
