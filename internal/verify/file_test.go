// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import "time"

// File verifies every site of the file at path (tests: the commands load
// and check through cli, which reports as it goes).
func File(path string, opts Options) (*Report, error) {
	start := time.Now()
	img, err := Load(path, opts)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	rep, err := Check(img, opts)
	if rep != nil {
		rep.Elapsed = time.Since(start)
	}
	return rep, err
}
