// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package dl

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// Each name is tried in order; a missing file, a missing symbol and a file
// Bind rejects are each an error naming the file, and the next name is
// tried. Oracle: glibc's own libc.so.6 and its dlerror text.
func TestLoadFrom(t *testing.T) {
	var bound [][]unsafe.Pointer
	reject := true
	l := Library{
		Symbols: []string{"strlen", "memcpy"},
		Bind: func(syms []unsafe.Pointer) error {
			if reject {
				reject = false
				return errors.New("wrong version")
			}
			bound = append(bound, syms)
			return nil
		},
		Fail: "cannot load libc (test)",
	}
	err := l.LoadFrom("libftpatch-no-such.so.1", "libc.so.6")
	for _, w := range []string{"cannot load libc (test): ", "libftpatch-no-such.so.1: cannot open shared object file", "; libc.so.6: wrong version"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
	if len(bound) != 0 {
		t.Fatalf("a rejected file was bound: %v", bound)
	}
	if err := l.LoadFrom("libftpatch-no-such.so.1", "libc.so.6"); err != nil {
		t.Fatal(err)
	}
	if len(bound) != 1 || len(bound[0]) != 2 || bound[0][0] == nil || bound[0][1] == nil || bound[0][0] == bound[0][1] {
		t.Fatalf("bound %v, want strlen and memcpy", bound)
	}

	missing := Library{Symbols: []string{"strlen", "ftpatch_no_such_symbol"}, Fail: "cannot load x",
		Bind: func([]unsafe.Pointer) error { t.Error("Bind called without every symbol"); return nil }}
	if err := missing.LoadFrom("libc.so.6"); err == nil || !strings.Contains(err.Error(), "ftpatch_no_such_symbol") {
		t.Errorf("missing symbol: %v, want an error naming it", err)
	}
}

// Load tries Names once and keeps the answer.
func TestLoadOnce(t *testing.T) {
	n := 0
	l := Library{Names: []string{"libc.so.6"}, Symbols: []string{"strlen"},
		Bind: func([]unsafe.Pointer) error { n++; return nil }, Fail: "cannot load libc"}
	for range 3 {
		if err := l.Load(); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Errorf("bound %d times, want 1", n)
	}
}
