// SPDX-License-Identifier: Apache-2.0

package input

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// head builds the first 20 bytes of an ELF file.
func head(class elf.Class, data elf.Data, machine uint16) []byte {
	b := []byte{0x7F, 'E', 'L', 'F', byte(class), byte(data), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}
	if data == elf.ELFDATA2MSB {
		b[18], b[19] = byte(machine>>8), byte(machine)
	} else {
		b[18], b[19] = byte(machine), byte(machine>>8)
	}
	return b
}

func TestCheckIdent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		head    []byte
		want    error
		what    string
		message string
	}{
		{"aarch64", head(elf.ELFCLASS64, elf.ELFDATA2LSB, 183), nil, "", ""},
		{"x86-64", head(elf.ELFCLASS64, elf.ELFDATA2LSB, 62), ErrNotAArch64, "x86-64 ELF64",
			"not a 64-bit little-endian AArch64 ELF file (class ELFCLASS64, data ELFDATA2LSB, machine EM_X86_64)"},
		{"arm32", head(elf.ELFCLASS32, elf.ELFDATA2LSB, 40), ErrNotAArch64, "arm ELF32", ""},
		{"aarch64 big-endian", head(elf.ELFCLASS64, elf.ELFDATA2MSB, 183), ErrNotAArch64, "aarch64 ELF64 big-endian", ""},
		{"ILP32", head(elf.ELFCLASS32, elf.ELFDATA2LSB, 183), ErrNotAArch64, "aarch64 ELF32", ""},
		{"unknown machine", head(elf.ELFCLASS64, elf.ELFDATA2LSB, 4242), ErrNotAArch64, "machine 4242 ELF64", ""},
		{"broken class: taken, for the reader to report", head(0, elf.ELFDATA2LSB, 183), nil, "", ""},
		{"machine EM_NONE: taken", head(elf.ELFCLASS64, elf.ELFDATA2LSB, 0), nil, "", ""},
		{"bad version: taken", func() []byte { b := head(elf.ELFCLASS64, elf.ELFDATA2LSB, 62); b[6] = 0; return b }(), nil, "", ""},
		{"ar archive", []byte("!<arch>\nvmlinux.o/"), ErrNotELF, "", ""},
		{"script", []byte("#!/bin/sh\n"), ErrNotELF, "", ""},
		{"short ELF", []byte("\x7fELF\x02\x01"), ErrNotELF, "", ""},
		{"empty", nil, ErrNotELF, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckIdent(tc.head)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckIdent = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("CheckIdent = %v, want %v", err, tc.want)
			}
			var fe *ForeignError
			if tc.what != "" && (!errors.As(err, &fe) || fe.What() != tc.what) {
				t.Errorf("What() of %v: want %q", err, tc.what)
			}
			if tc.message != "" && err.Error() != tc.message {
				t.Errorf("message %q, want %q", err, tc.message)
			}
		})
	}
}

// Identify reads a compressed file's first decompressed bytes.
func TestIdentifyCompressed(t *testing.T) {
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"x86.o.xz":   goCompress(t, XZ, append(head(elf.ELFCLASS64, elf.ELFDATA2LSB, 62), make([]byte, 100)...)),
		"arm64.o.xz": goCompress(t, XZ, append(head(elf.ELFCLASS64, elf.ELFDATA2LSB, 183), make([]byte, 100)...)),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Identify(filepath.Join(dir, "arm64.o.xz")); err != nil {
		t.Errorf("arm64.o.xz: %v", err)
	}
	if err := Identify(filepath.Join(dir, "x86.o.xz")); !errors.Is(err, ErrNotAArch64) {
		t.Errorf("x86.o.xz: %v, want ErrNotAArch64", err)
	}
	if err := Identify(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrNotELF) || errors.Is(err, ErrNotAArch64) {
		t.Errorf("missing file: %v, want an error that is not a verdict", err)
	}
}

// FuzzCheckIdent: never a panic; a 64-bit little-endian AArch64 header is
// always taken; a skip is only ever for a file without the ELF magic, or a
// well-formed header for another machine; every error is one of the two
// verdicts.
func FuzzCheckIdent(f *testing.F) {
	f.Add(head(elf.ELFCLASS64, elf.ELFDATA2LSB, 183))
	f.Add(head(elf.ELFCLASS32, elf.ELFDATA2LSB, 40))
	f.Add([]byte("!<arch>\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckIdent(b)
		magic := len(b) >= IdentLen && bytes.HasPrefix(b, []byte("\x7fELF"))
		aarch64 := magic && b[4] == 2 && b[5] == 1 && b[6] == 1 && b[18] == 183 && b[19] == 0
		wellFormed := magic && (b[4] == 1 || b[4] == 2) && (b[5] == 1 || b[5] == 2) && b[6] == 1
		switch {
		case aarch64 && err != nil:
			t.Fatalf("CheckIdent(% x) = %v for an AArch64 header", b[:IdentLen], err)
		case errors.Is(err, ErrNotAArch64) && !wellFormed:
			t.Fatalf("CheckIdent(% x) = %v for a broken header, which the reader must report", b[:IdentLen], err)
		case errors.Is(err, ErrNotELF) && magic:
			t.Fatalf("CheckIdent(% x) = %v for an ELF header", b[:IdentLen], err)
		case err != nil && !errors.Is(err, ErrNotELF) && !errors.Is(err, ErrNotAArch64):
			t.Fatalf("CheckIdent: %v is neither verdict", err)
		}
	})
}
