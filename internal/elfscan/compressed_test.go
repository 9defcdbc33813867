// SPDX-License-Identifier: Apache-2.0

package elfscan_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// withFlags returns the ELF64 file b with sh_flags of the section named
// name or'ed with fl.
func withFlags(t *testing.T, b []byte, name string, fl elf.SectionFlag) []byte {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Clone(b)
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	for i, s := range f.Sections {
		if s.Name == name {
			at := int(shoff) + i*64 + 8 // sh_flags
			binary.LittleEndian.PutUint64(b[at:], binary.LittleEndian.Uint64(b[at:])|uint64(fl))
			return b
		}
	}
	t.Fatalf("no section %s", name)
	return nil
}

// SHF_COMPRESSED is taken where the toolchain puts it (a section nothing
// reads needs no more than its bytes in the file: .comment here, whose
// first bytes read as a compression header claim far more than the file
// holds) and refused where the ELF ABI forbids it (a loaded section) or
// where ftpatch reads the bytes as they are (relocations).
func TestCompressedSectionRules(t *testing.T) {
	mod := testutil.Fixtures(t, "gcc-callops-module.ko")[0]
	b, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	open := func(b []byte) error {
		o, err := elfscan.NewObject(bytes.NewReader(b), "m.ko")
		if err == nil {
			_, err = o.Scan()
			o.Close()
		}
		return err
	}
	if err := open(withFlags(t, b, ".comment", elf.SHF_COMPRESSED)); err != nil {
		t.Errorf("compressed .comment: %v", err)
	}
	for _, name := range []string{".text", ".rela__patchable_function_entries"} {
		err := open(withFlags(t, b, name, elf.SHF_COMPRESSED))
		if !errors.Is(err, elfscan.ErrCompressedSection) || !errors.Is(err, elfscan.ErrMalformed) {
			t.Errorf("compressed %s: %v; want ErrCompressedSection", name, err)
		}
	}
}
