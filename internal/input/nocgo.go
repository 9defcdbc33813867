// SPDX-License-Identifier: Apache-2.0

//go:build !cgo

package input

// Without cgo, xz, zstd and gzip are decoded by the pure-Go decoders.

func newLzmaDecoder() (decoder, error) { return nil, errNoCgo }
func newZstdDecoder() (decoder, error) { return nil, errNoCgo }
func newZlibDecoder() (decoder, error) { return nil, errNoCgo }
