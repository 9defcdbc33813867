// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ftpatch/ftpatch/internal/input"
)

// ErrNotAArch64 is returned for ELF files that are not 64-bit little-endian
// AArch64 (as an *input.ForeignError, which says what they are).
var ErrNotAArch64 = input.ErrNotAArch64

// ErrMalformed wraps every structural error found in an input file.
var ErrMalformed = errors.New("malformed ELF")

// OpenELF parses r as an ELF file with debug/elf, turning its panics on
// hostile input into errors, and checks that it is ELF64, little-endian,
// EM_AARCH64 and of type REL, EXEC or DYN.
func OpenELF(r io.ReaderAt) (f *elf.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%w: %v", ErrMalformed, p)
		}
	}()
	var magic [4]byte
	switch n, _ := r.ReadAt(magic[:], 0); {
	case !strings.HasPrefix(elf.ELFMAG, string(magic[:n])):
		return nil, fmt.Errorf("%w: not an ELF file: it starts with %q, not %q", ErrMalformed, magic[:n], elf.ELFMAG)
	case n < len(magic):
		return nil, fmt.Errorf("%w: %w: the file is %d bytes, shorter than the 64-byte ELF64 header", ErrMalformed, ErrTruncated, n)
	}
	f, err = elf.NewFile(r)
	if err != nil {
		if t := truncation(r); t != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, t)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if t := truncatedSections(f, r); t != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, t)
	}
	if err := compressedSections(f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Machine != elf.EM_AARCH64 {
		return nil, &input.ForeignError{Class: f.Class, Data: f.Data, Machine: f.Machine}
	}
	switch f.Type {
	case elf.ET_REL, elf.ET_EXEC, elf.ET_DYN:
	default:
		return nil, fmt.Errorf("%w: unsupported ELF type %v", ErrMalformed, f.Type)
	}
	return f, nil
}

// SafeData returns a section's contents, bounded by the file size, turning
// panics into errors.
func SafeData(s *elf.Section) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("%w: section %q: %v", ErrMalformed, s.Name, p)
		}
	}()
	if s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	// debug/elf sizes its buffer from the header (up to 10 MiB at once), so
	// a corrupt size would allocate that much for a small file: a section
	// running past the end of the file fails first, and a compressed one is
	// read as its data arrives.
	if s.Flags&elf.SHF_COMPRESSED != 0 {
		if err := decompressible(s); err != nil {
			return nil, err
		}
		if b, err = io.ReadAll(io.LimitReader(s.Open(), int64(min(s.Size, 1<<62)))); err == nil && uint64(len(b)) != s.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %q at %#x: %w", ErrMalformed, s.Name, s.Offset, err)
		}
		return b, nil
	}
	if s.Size > 0 {
		var last [1]byte
		if int64(s.Size-1) < 0 {
			err = io.ErrUnexpectedEOF
		} else {
			_, err = s.ReadAt(last[:], int64(s.Size-1))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %q at %#x: size %#x runs past the end of the file: %w", ErrMalformed, s.Name, s.Offset, s.Size, io.ErrUnexpectedEOF)
		}
	}
	b, err = s.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: section %q at %#x: %w", ErrMalformed, s.Name, s.Offset, err)
	}
	return b, nil
}

// decompressible refuses a compressed section whose header says it
// decompresses to more than the run's cap (--max-decompressed): its
// contents are decoded only when a command reads them, as a compressed
// file's are, and behind the same cap.
func decompressible(s *elf.Section) error {
	if limit := input.MaxDecompressed(); s.Size > uint64(limit) {
		return fmt.Errorf("%w: section %q at %#x: %w: it decompresses to %d bytes, more than %d (raise --max-decompressed if it is genuine)",
			ErrMalformed, s.Name, s.Offset, input.ErrTooLarge, s.Size, limit)
	}
	return nil
}
