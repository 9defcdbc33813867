//go:build !cgo

package input

import "errors"

// Without cgo, xz is decoded by the pure-Go decoder.
func newLzmaDecoder() (decoder, error) {
	return nil, errors.New("built without cgo: no liblzma")
}
