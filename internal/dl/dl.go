// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package dl

/*
#cgo LDFLAGS: -ldl
// -ldl: dlopen is in libc since glibc 2.34; older ones need libdl.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

// dlerror's text is per thread and valid only until the next call, so it is
// copied out in the same C call.
static void *ftp_dlopen(const char *name, char *err, size_t n) {
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		snprintf(err, n, "%s", dlerror());
	return lib;
}

static void *ftp_dlsym(void *lib, const char *sym, char *err, size_t n) {
	dlerror();
	void *p = dlsym(lib, sym);
	if (p == NULL) {
		const char *e = dlerror();
		snprintf(err, n, "%s", e != NULL ? e : sym);
	}
	return p;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// Library is a shared library loaded on first use.
type Library struct {
	// Names are the file names tried in order: the SONAME of the Debian
	// package first, then the unversioned name its -dev package installs.
	Names []string
	// Symbols are resolved in every file tried, in this order.
	Symbols []string
	// Bind receives the addresses of Symbols, in order, from a file that
	// has them all. It stores them (in the caller's C table) and returns
	// nil, or rejects the file with the reason.
	Bind func(syms []unsafe.Pointer) error
	// Fail starts the error when no file loads, naming the library and
	// what to install: "cannot load liblzma (Debian package liblzma5)".
	Fail string

	once sync.Once
	err  error
}

// Load loads the library once, from Names; later calls return the first
// call's result.
func (l *Library) Load() error {
	l.once.Do(func() { l.err = l.LoadFrom(l.Names...) })
	return l.err
}

// LoadFrom tries names in order, whether or not the library is loaded
// already; on failure Bind was not called with a rejected file's symbols
// accepted, so what was bound before stays.
func (l *Library) LoadFrom(names ...string) error {
	var msgs []string
	for _, name := range names {
		err := l.open(name)
		if err == nil {
			return nil
		}
		msgs = append(msgs, err.Error())
	}
	return fmt.Errorf("%s: %s", l.Fail, strings.Join(msgs, "; "))
}

func (l *Library) open(name string) error {
	var buf [512]C.char
	cname := C.CString(name)
	lib := C.ftp_dlopen(cname, &buf[0], C.size_t(len(buf)))
	C.free(unsafe.Pointer(cname))
	if lib == nil {
		return errors.New(C.GoString(&buf[0]))
	}
	syms := make([]unsafe.Pointer, len(l.Symbols))
	for i, s := range l.Symbols {
		cs := C.CString(s)
		syms[i] = C.ftp_dlsym(lib, cs, &buf[0], C.size_t(len(buf)))
		C.free(unsafe.Pointer(cs))
		if syms[i] == nil {
			C.dlclose(lib)
			return errors.New(C.GoString(&buf[0]))
		}
	}
	if err := l.Bind(syms); err != nil {
		C.dlclose(lib)
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
