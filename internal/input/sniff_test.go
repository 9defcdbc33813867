// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bytes"
	"io"
)

// The tests' oracles for what Open, OpenFound, Identify and OpenPlain
// decide about a file, each reading it its own way: the commands have no
// use for them.

// Sniff reports whether the file at path is an ELF file, plain or
// compressed, reading only its first bytes (for a compressed file: only a
// small decompressed prefix), as a folder walk once did: a file that
// is not ELF is (false, c, nil); err is set when the file cannot be read,
// is not a regular file, or its compressed stream fails before it shows
// whether it is ELF (ErrCorrupt, as Open says; see shownNotELF).
func Sniff(path string) (isELF bool, compression string, err error) {
	f, _, err := openRegularFile(path)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	var head [magicLen]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return false, "", err
	}
	c := DetectCompression(head[:n])
	if c == None {
		return bytes.HasPrefix(head[:n], elfMagic), c, nil
	}
	isELF, err = sniffCompressed(c, f)
	return isELF, c, err
}

// sniffCompressed decompresses just enough of r to see the ELF magic. A
// stream that fails before it shows whether it is ELF is a decode error
// (see shownNotELF); one that ends cleanly before 4 bytes is not ELF.
func sniffCompressed(c string, r io.Reader) (bool, error) {
	p, err := getDecoder(c, r)
	if err != nil {
		return false, err
	}
	defer p.put()
	var got [len("\x7fELF")]byte
	n, err := fill(p.d, got[:])
	if err != nil && err != io.EOF {
		return false, decodeError(c, int64(n), err)
	}
	return bytes.Equal(got[:n], elfMagic), nil
}

// RefuseCompressed returns a *CompressedError when the file at path starts
// with a compression magic, nil for a plain file, and an error when it
// cannot be read or is not a regular file.
func RefuseCompressed(path string) error {
	f, err := OpenPlain(path)
	if err != nil {
		return err
	}
	return f.Close()
}
