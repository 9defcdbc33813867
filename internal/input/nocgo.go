// SPDX-License-Identifier: Apache-2.0

//go:build !cgo

package input

import "errors"

// Without cgo, xz, zstd and gzip are decoded by the pure-Go decoders.
var errNoCgo = errors.New("built without cgo: no native decoders")

func newLzmaDecoder() (decoder, error) { return nil, errNoCgo }
func newZstdDecoder() (decoder, error) { return nil, errNoCgo }
func newZlibDecoder() (decoder, error) { return nil, errNoCgo }
