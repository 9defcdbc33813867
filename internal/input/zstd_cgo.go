// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package input

/*
#include <stdlib.h>
#include "ftp_zstd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/dl"
)

// zstdLib is libzstd: Debian's libzstd1 SONAME, then the unversioned name
// libzstd-dev installs. Symbols are in ftp_zstd_bind's order.
var zstdLib = dl.Library{
	Names: []string{"libzstd.so.1", "libzstd.so"},
	Symbols: []string{"ZSTD_createDCtx", "ZSTD_freeDCtx", "ZSTD_DCtx_reset", "ZSTD_DCtx_setParameter",
		"ZSTD_decompressStream", "ZSTD_isError", "ZSTD_getErrorCode", "ZSTD_getErrorName"},
	Bind: func(syms []unsafe.Pointer) error {
		C.ftp_zstd_bind(&syms[0])
		return nil
	},
	Fail: "cannot load libzstd (Debian package libzstd1)",
}

// zstdStepper decodes zstd through libzstd, about the cpu time of
// zstd -d (the pure-Go decoder takes ~1.5x). Concatenated frames decode
// as one stream, as zstd -d does.
type zstdStepper struct {
	z        *C.ftp_zstd
	frameEnd bool // the last call ended a frame (or none started yet)
}

func newZstdDecoder() (decoder, error) {
	if err := zstdLib.Load(); err != nil {
		return nil, err
	}
	z := C.ftp_zstd_new()
	if z == nil {
		return nil, errors.New("libzstd: out of memory")
	}
	s := &zstdStepper{z: z}
	d := &nativeDecoder{s: s, step: zstdStep}
	runtime.AddCleanup(d, func(z *C.ftp_zstd) { C.ftp_zstd_free(z) }, z)
	return d, nil
}

// windowLogMax is log2(maxWindow): frames asking for a larger window are
// refused before it is allocated.
var windowLogMax = bits.Len(uint(maxWindow)) - 1

func (s *zstdStepper) start() error {
	s.frameEnd = false
	if e := C.ftp_zstd_start(s.z, C.int(windowLogMax)); e != 0 {
		return fmt.Errorf("libzstd: error %d starting a stream", int(e))
	}
	return nil
}

func (s *zstdStepper) step(in, out []byte, atEOF bool) (int, int, bool, error) {
	if len(in) == 0 && atEOF && s.frameEnd {
		return 0, 0, true, nil
	}
	// SliceData: nil for a nil slice; C reads no byte of an empty one.
	inPtr, outPtr := (*C.uint8_t)(unsafe.SliceData(in)), (*C.uint8_t)(unsafe.SliceData(out))
	r := C.ftp_zstd_run(s.z, inPtr, C.size_t(len(in)), outPtr, C.size_t(len(out)))
	inUsed, outUsed := int(r.in_used), int(r.out_used)
	if r.err != 0 {
		switch r.err {
		case C.FTP_ZSTD_WINDOW_TOO_LARGE:
			return inUsed, outUsed, false, fmt.Errorf("%w: zstd window larger than %d bytes", ErrTooLarge, maxWindow)
		case C.FTP_ZSTD_MEMORY:
			return inUsed, outUsed, false, errors.New("libzstd: out of memory")
		}
		return inUsed, outUsed, false, errors.New(C.GoString(r.msg))
	}
	if inUsed > 0 || outUsed > 0 {
		s.frameEnd = r.frame_end != 0
	}
	return inUsed, outUsed, s.frameEnd && atEOF && inUsed == len(in), nil
}
