// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package input

/*
#cgo LDFLAGS: -Wl,--as-needed
#cgo pkg-config: liblzma
#include <stdlib.h>
#include "ftp_lzma.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/dl"
)

// lzmaLib is liblzma: the SONAME of Debian's liblzma5, then the unversioned
// name liblzma-dev installs. Symbols are in ftp_lzma_bind's order.
var lzmaLib = dl.Library{
	Names:   []string{"liblzma.so.5", "liblzma.so"},
	Symbols: []string{"lzma_stream_decoder", "lzma_code", "lzma_end"},
	Bind: func(syms []unsafe.Pointer) error {
		C.ftp_lzma_bind(&syms[0])
		return nil
	},
	Fail: "cannot load liblzma (Debian package liblzma5)",
}

// lzmaStepper decodes xz through liblzma, about 1.0-1.1x the cpu time of
// xz -d (the pure-Go decoder takes 2-3x).
type lzmaStepper struct{ s *C.lzma_stream }

func newLzmaDecoder() (decoder, error) {
	if err := lzmaLib.Load(); err != nil {
		return nil, err
	}
	s := C.ftp_lzma_new()
	if s == nil {
		return nil, errors.New("liblzma: out of memory")
	}
	d := &nativeDecoder{s: &lzmaStepper{s: s}, step: lzmaStep}
	runtime.AddCleanup(d, func(s *C.lzma_stream) { C.ftp_lzma_free(s) }, s)
	return d, nil
}

// lzmaMemlimit lets through a dictionary of maxWindow bytes and the
// decoder's own state (well under 1 MiB); liblzma checks it against the
// stream's block headers before allocating.
const lzmaMemlimit = maxWindow + 1<<20

func (l *lzmaStepper) start() error {
	if ret := C.ftp_lzma_start(l.s, C.uint64_t(lzmaMemlimit)); ret != C.LZMA_OK {
		return lzmaError(ret)
	}
	return nil
}

func (l *lzmaStepper) step(in, out []byte, atEOF bool) (int, int, bool, error) {
	// SliceData: nil for a nil slice; C reads no byte of an empty one.
	inPtr, outPtr := (*C.uint8_t)(unsafe.SliceData(in)), (*C.uint8_t)(unsafe.SliceData(out))
	var fin C.int
	if atEOF {
		fin = 1
	}
	res := C.ftp_lzma_run(l.s, inPtr, C.size_t(len(in)), outPtr, C.size_t(len(out)), fin)
	inUsed, outUsed := int(res.in_used), int(res.out_used)
	switch res.ret {
	case C.LZMA_OK:
		return inUsed, outUsed, false, nil
	case C.LZMA_STREAM_END:
		return inUsed, outUsed, true, nil
	}
	return inUsed, outUsed, false, lzmaError(res.ret)
}

// lzmaError turns a liblzma return code into an error; ErrTooLarge for a
// dictionary over the limit, the rest are wrapped in ErrCorrupt by
// decodeError.
func lzmaError(ret C.int) error {
	switch ret {
	case C.LZMA_MEMLIMIT_ERROR:
		return fmt.Errorf("%w: xz dictionary larger than %d bytes", ErrTooLarge, maxWindow)
	case C.LZMA_MEM_ERROR:
		return errors.New("liblzma: out of memory")
	case C.LZMA_FORMAT_ERROR:
		return errors.New("not in xz format")
	case C.LZMA_OPTIONS_ERROR:
		return errors.New("unsupported xz options")
	case C.LZMA_DATA_ERROR:
		return errors.New("corrupt xz data")
	case C.LZMA_BUF_ERROR:
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("liblzma error %d", int(ret))
}
