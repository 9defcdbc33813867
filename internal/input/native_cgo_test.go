// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package input

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// A library that does not load is an error naming it, and leaves the
// decoder working (through the library loaded before, or the Go decoder).
func TestLibraryLoadFailure(t *testing.T) {
	for _, tc := range []struct {
		c    string
		load func(...string) error
		name string
	}{
		{XZ, lzmaLib.LoadFrom, "libftpatch-no-such-lzma.so.5"},
		{Zstd, zstdLib.LoadFrom, "libftpatch-no-such-zstd.so.1"},
		{Gzip, zlibLib.LoadFrom, "libftpatch-no-such-z.so.1"},
	} {
		err := tc.load(tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Fatalf("loading %s = %v, want an error naming it", tc.name, err)
		}
		want := append(bytes.Clone(elfMagic), bytes.Repeat([]byte("module"), 1000)...)
		f, err := openBytes(goCompress(t, tc.c, want), DefaultMaxDecompressed)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, f); !bytes.Equal(got, want) {
			t.Errorf("%s: decoded bytes differ after a failed load", tc.c)
		}
	}
}

// The ftpatch binary does not link liblzma, libzstd or zlib (they are
// dlopened on first use), so it starts on a machine without them: no
// DT_NEEDED entry names them.
func TestBinaryDoesNotNeedDecoderLibraries(t *testing.T) {
	libs := testutil.NeededLibraries(t, testutil.BuildFTPatch(t))
	for _, l := range libs {
		if strings.Contains(l, "lzma") || strings.Contains(l, "zstd") || strings.HasPrefix(l, "libz.") {
			t.Errorf("ftpatch needs %s (DT_NEEDED %q): it must be dlopened", l, libs)
		}
	}
}
