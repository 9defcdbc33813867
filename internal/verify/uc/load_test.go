// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package uc

import (
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// The library is dlopened on first use, never a DT_NEEDED of the binary:
// every command other than verify would pay for loading it at start-up.
func TestBinaryDoesNotNeedUnicorn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/ftpatch")
	}
	libs := testutil.NeededLibraries(t, testutil.BuildFTPatch(t))
	for _, l := range libs {
		if strings.Contains(l, "unicorn") {
			t.Errorf("ftpatch has DT_NEEDED %s; want libunicorn loaded lazily (imports %q)", l, libs)
		}
	}
}

func TestLoadFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // from dlerror
	}{
		{"libunicorn-missing.so.9", "cannot open shared object file"},
		{"libc.so.6", "uc_version"}, // loads, but has no Unicorn symbols
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadFrom(tc.name)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range []string{tc.want, "libunicorn2"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// A failed load leaves the real library usable.
	mu, err := NewUnicorn(ARCH_ARM64, MODE_ARM)
	if err != nil {
		t.Fatal(err)
	}
	mu.Close()
}
