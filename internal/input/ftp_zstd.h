// SPDX-License-Identifier: Apache-2.0
// libzstd, loaded with dlopen on first use by package dl (see zstd_cgo.go):
// the binary does not link it, so it starts on a system without it and falls
// back to the pure-Go decoder. Debian ships no zstd.h without libzstd-dev,
// so the few declarations used here are written out in ftp_zstd.c from
// zstd's stable API (zstd.h, "stable" section, v1.4.0 and later).
#ifndef FTP_ZSTD_H
#define FTP_ZSTD_H
#include <stddef.h>
#include <stdint.h>

// Error codes of zstd_errors.h (stable values) this package tells apart.
enum {
	FTP_ZSTD_WINDOW_TOO_LARGE = 16, // ZSTD_error_frameParameter_windowTooLarge
	FTP_ZSTD_MEMORY = 64,           // ZSTD_error_memory_allocation
};

// ftp_zstd_bind stores the functions used here from syms, the addresses
// package dl resolved, in the order of zstdLib's Symbols (zstd_cgo.go).
void ftp_zstd_bind(void *const *syms);

// A decoding context (ZSTD_DCtx), opaque here.
typedef struct ftp_zstd ftp_zstd;

ftp_zstd *ftp_zstd_new(void);
void ftp_zstd_free(ftp_zstd *z);

// ftp_zstd_start starts a new stream on z (keeping its buffers), refusing
// frames whose window is over 2^window_log_max bytes; 0 or an error code.
int ftp_zstd_start(ftp_zstd *z, int window_log_max);

struct ftp_zstd_res {
	int err;          // 0, or a zstd error code (ZSTD_getErrorCode)
	int frame_end;    // the last call ended a frame, flushed whole
	size_t in_used, out_used;
	const char *msg;  // the error's name when err != 0 (static)
};

// ftp_zstd_run decodes from in into out (ZSTD_decompressStream) until in
// is used up or out is full. The context keeps no pointer to in or out.
struct ftp_zstd_res ftp_zstd_run(ftp_zstd *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
#endif
