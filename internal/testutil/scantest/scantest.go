// SPDX-License-Identifier: Apache-2.0

// Package scantest scans files for tests through elfscan's production
// API (Open, NewObject, Object.Scan): the tests of the packages above
// elfscan get their sites from real scans, never from sites built by
// hand. It is for tests only.
package scantest

import (
	"bytes"

	"github.com/ftpatch/ftpatch/internal/elfscan"
)

// File opens the (possibly compressed) ELF file at path, scans it and
// closes it.
func File(path string) (*elfscan.File, error) {
	o, err := elfscan.Open(path)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return o.Scan()
}

// Bytes scans the ELF file b; path is recorded in the result and used in
// messages only.
func Bytes(b []byte, path string) (*elfscan.File, error) {
	o, err := elfscan.NewObject(bytes.NewReader(b), path)
	if err != nil {
		return nil, err
	}
	return o.Scan()
}
