// SPDX-License-Identifier: Apache-2.0
// zlib, loaded with dlopen on first use by package dl (see zlib_cgo.go): the
// binary does not link it, so it starts on a system without it and falls
// back to the pure-Go decoder. Only the types and constants come from
// <zlib.h>.
#ifndef FTP_ZLIB_H
#define FTP_ZLIB_H
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

// ftp_zlib_bind stores the functions used here from syms, the addresses
// package dl resolved, in the order of zlibLib's Symbols (zlib_cgo.go).
void ftp_zlib_bind(void *const *syms);

// ftp_zlib_new returns an inflate stream for gzip members, or NULL.
z_stream *ftp_zlib_new(void);
void ftp_zlib_free(z_stream *s);

// ftp_zlib_start starts a new gzip member on s (keeping its window).
int ftp_zlib_start(z_stream *s);

struct ftp_zlib_res {
	int ret; // inflate's: Z_OK, Z_STREAM_END (a member ended), Z_BUF_ERROR (no progress) or an error
	size_t in_used, out_used;
	const char *msg; // zlib's message for an error, or NULL
};

// ftp_zlib_run inflates from in into out once. The stream keeps no pointer
// to in or out.
struct ftp_zlib_res ftp_zlib_run(z_stream *s, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
#endif
