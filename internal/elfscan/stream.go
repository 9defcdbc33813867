// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"fmt"
	"io"
)

// streamSection passes a section's contents to fn in pieces of at most
// chunk bytes (the last may be shorter), so that a large table is decoded
// without a copy of it all. Compressed sections are decompressed on the
// way. A section shorter in the file than its header says is an error
// naming the offset; debug/elf panics become errors.
func streamSection(s *elf.Section, chunk int, fn func([]byte) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: section %q: %v", ErrMalformed, s.Name, p)
		}
	}()
	if s.Type == elf.SHT_NOBITS || s.Size == 0 {
		return nil
	}
	if s.Flags&elf.SHF_COMPRESSED != 0 {
		if err := decompressible(s); err != nil {
			return err
		}
	}
	r := s.Open()
	buf := make([]byte, int(min(uint64(chunk), s.Size)))
	for pos := uint64(0); pos < s.Size; {
		want := int(min(uint64(len(buf)), s.Size-pos))
		n, err := io.ReadFull(r, buf[:want])
		if err != nil {
			return fmt.Errorf("%w: section %q at %#x: truncated at %#x: %w", ErrMalformed, s.Name, s.Offset, pos+uint64(n), err)
		}
		if err := fn(buf[:n]); err != nil {
			return err
		}
		pos += uint64(n)
	}
	return nil
}
