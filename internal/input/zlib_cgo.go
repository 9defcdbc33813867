// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package input

/*
#include <stdlib.h>
#include "ftp_zlib.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/dl"
)

// zlibLib is zlib: Debian's zlib1g SONAME, then the unversioned name
// zlib1g-dev installs. Symbols are in ftp_zlib_bind's order; inflateInit2
// is a macro over inflateInit2_, which checks the version and the size of
// z_stream ftp_zlib.c was compiled with.
var zlibLib = dl.Library{
	Names:   []string{"libz.so.1", "libz.so"},
	Symbols: []string{"inflateInit2_", "inflate", "inflateReset", "inflateEnd"},
	Bind: func(syms []unsafe.Pointer) error {
		C.ftp_zlib_bind(&syms[0])
		return nil
	},
	Fail: "cannot load zlib (Debian package zlib1g)",
}

// zlibStepper decodes gzip through zlib. Concatenated members decode as one
// stream, as gzip -d does; anything after a member must be another member.
type zlibStepper struct {
	s         *C.z_stream
	memberEnd bool // the last call ended a member
}

func newZlibDecoder() (decoder, error) {
	if err := zlibLib.Load(); err != nil {
		return nil, err
	}
	s := C.ftp_zlib_new()
	if s == nil {
		return nil, errors.New("zlib: cannot start an inflate stream")
	}
	d := &nativeDecoder{s: &zlibStepper{s: s}, step: zlibStep}
	runtime.AddCleanup(d, func(s *C.z_stream) { C.ftp_zlib_free(s) }, s)
	return d, nil
}

func (z *zlibStepper) start() error {
	z.memberEnd = false
	if ret := C.ftp_zlib_start(z.s); ret != C.Z_OK {
		return fmt.Errorf("zlib: error %d starting a stream", int(ret))
	}
	return nil
}

func (z *zlibStepper) step(in, out []byte, atEOF bool) (int, int, bool, error) {
	if z.memberEnd {
		if len(in) == 0 && atEOF {
			return 0, 0, true, nil
		}
		if err := z.start(); err != nil {
			return 0, 0, false, err
		}
	}
	// SliceData: nil for a nil slice; C reads no byte of an empty one.
	inPtr, outPtr := (*C.uint8_t)(unsafe.SliceData(in)), (*C.uint8_t)(unsafe.SliceData(out))
	r := C.ftp_zlib_run(z.s, inPtr, C.size_t(len(in)), outPtr, C.size_t(len(out)))
	inUsed, outUsed := int(r.in_used), int(r.out_used)
	switch r.ret {
	case C.Z_OK, C.Z_BUF_ERROR: // Z_BUF_ERROR: no progress possible (the caller sees none)
		return inUsed, outUsed, false, nil
	case C.Z_STREAM_END:
		z.memberEnd = true
		return inUsed, outUsed, atEOF && inUsed == len(in), nil
	case C.Z_MEM_ERROR:
		return inUsed, outUsed, false, errors.New("zlib: out of memory")
	}
	msg := "corrupt gzip data"
	if r.msg != nil {
		msg = C.GoString(r.msg)
	}
	return inUsed, outUsed, false, errors.New(msg)
}
