// SPDX-License-Identifier: Apache-2.0

package uc

/*
#include "uc.h"
#define FTP_STR_(x) #x
#define FTP_STR(x) FTP_STR_(x)
// The SONAME of Debian's libunicorn2 (and upstream's) is libunicorn.so.<API major>.
static const char *ftp_uc_soname(void) { return "libunicorn.so." FTP_STR(UC_API_MAJOR); }
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/ftpatch/ftpatch/internal/dl"
)

// lib is libunicorn, dlopened on first use; a file whose API major is not
// the one this package was compiled against is refused.
var lib = dl.Library{
	Names:   []string{C.GoString(C.ftp_uc_soname()), "libunicorn.so"},
	Symbols: ucNames(),
	Bind: func(syms []unsafe.Pointer) error {
		var major, minor C.unsigned
		if C.ftp_uc_bind(&syms[0], &major, &minor) == 0 {
			return fmt.Errorf("Unicorn %d.%d, need %d.x (at least %d.0)", major, minor, C.UC_API_MAJOR, C.UC_API_MAJOR)
		}
		return nil
	},
	Fail: "uc: cannot load the Unicorn library (install Debian package libunicorn2, or libunicorn-dev)",
}

func ucNames() []string {
	cs := unsafe.Slice((**C.char)(unsafe.Pointer(&C.ftp_uc_names)), C.ftp_uc_nnames)
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = C.GoString(c)
	}
	return names
}

// Preload loads libunicorn now, for a caller that has other work to do
// before its first engine: the dynamic linker's relocation of a 19 MB
// library is ~10 ms of cpu, which a goroutine can spend while the caller
// reads its input. NewUnicorn waits for it (and reports its error).
func Preload() { load() }

// load dlopens libunicorn once, trying the SONAME and then the unversioned
// name a -dev package installs, and reports why it could not.
func load() error { return lib.Load() }

// loadFrom tries names in order; on failure ftp_uc is left as it was.
func loadFrom(names ...string) error { return lib.LoadFrom(names...) }
