package uc

/*
#include <stdlib.h>
#include "uc.h"
#define FTP_STR_(x) #x
#define FTP_STR(x) FTP_STR_(x)
// The SONAME of Debian's libunicorn2 (and upstream's) is libunicorn.so.<API major>.
static const char *ftp_uc_soname(void) { return "libunicorn.so." FTP_STR(UC_API_MAJOR); }
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// load dlopens libunicorn once, trying the SONAME and then the unversioned
// name a -dev package installs, and reports why it could not.
func load() error {
	loadOnce.Do(func() { loadErr = loadFrom(C.GoString(C.ftp_uc_soname()), "libunicorn.so") })
	return loadErr
}

// loadFrom tries names in order; on failure ftp_uc is left as it was.
func loadFrom(names ...string) error {
	var msgs []string
	for _, name := range names {
		cs := C.CString(name)
		e := C.ftp_uc_load(cs)
		C.free(unsafe.Pointer(cs))
		if e == nil {
			return nil
		}
		msgs = append(msgs, C.GoString(e))
	}
	return fmt.Errorf("uc: cannot load the Unicorn library (install Debian package libunicorn2, or libunicorn-dev): %s",
		strings.Join(msgs, "; "))
}
