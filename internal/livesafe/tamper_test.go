// SPDX-License-Identifier: Apache-2.0

package livesafe

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

// rawELF is a test's raw view of an ELF64 little-endian file: enough to
// find a header field or a section's bytes by name.
type rawELF struct {
	b      []byte
	shoff  int
	sh     []pairtest.Shdr
	names  []string
	symtab int
}

func parseRaw(t *testing.T, b []byte) *rawELF {
	t.Helper()
	le := binary.LittleEndian
	r := &rawELF{b: b, shoff: int(le.Uint64(b[0x28:]))}
	r.sh = make([]pairtest.Shdr, le.Uint16(b[0x3c:]))
	if err := binary.Read(bytes.NewReader(b[r.shoff:]), le, r.sh); err != nil {
		t.Fatal(err)
	}
	shstr := r.sh[le.Uint16(b[0x3e:])]
	for i, s := range r.sh {
		r.names = append(r.names, pairtest.CString(b[shstr.Off:shstr.Off+shstr.Size], s.Name))
		if s.Type == uint32(elf.SHT_SYMTAB) {
			r.symtab = i
		}
	}
	return r
}

// sec is the index of the section named name.
func (r *rawELF) sec(t *testing.T, name string) int {
	t.Helper()
	for i, n := range r.names {
		if n == name {
			return i
		}
	}
	t.Fatalf("no section %s", name)
	return 0
}

// shdr is the offset of field off (an Elf64_Shdr offset) of section i.
func (r *rawELF) shdr(i, off int) int { return r.shoff + i*64 + off }

// Elf64_Shdr field offsets.
const (
	shName, shType, shFlags, shAddr, shOffset, shSize = 0x00, 0x04, 0x08, 0x10, 0x18, 0x20
	shLink, shInfo, shAddralign, shEntsize            = 0x28, 0x2c, 0x30, 0x38
)

// gap returns the first byte between two sections (alignment padding).
func (r *rawELF) gap(t *testing.T) int {
	t.Helper()
	covered := make([]bool, len(r.b))
	for k := range 64 {
		covered[k] = true
	}
	for k := r.shoff; k < r.shoff+len(r.sh)*64; k++ {
		covered[k] = true
	}
	for _, s := range r.sh {
		if s.Type != uint32(elf.SHT_NOBITS) && s.Type != uint32(elf.SHT_NULL) {
			for k := s.Off; k < s.Off+s.Size; k++ {
				covered[k] = true
			}
		}
	}
	for k, c := range covered {
		if !c {
			return k
		}
	}
	t.Fatal("no padding between sections")
	return 0
}

// insertBefore returns b with n bytes of v inserted at off, which lies
// before the section header table (e_shoff moves with it).
func insertBefore(b []byte, off, n int, v byte) []byte {
	out := append(append(bytes.Clone(b[:off]), bytes.Repeat([]byte{v}, n)...), b[off:]...)
	binary.LittleEndian.PutUint64(out[0x28:], binary.LittleEndian.Uint64(out[0x28:])+uint64(n))
	return out
}

// Issue 22.7: verify --against on a relocatable object accounts for every
// byte of FILE: the planned words, relocations and symbols are allowed,
// and every other change, in a header, a gap, appended, in section header
// 0 or in the upper bits of a field debug/elf drops, is caught. FILE is the
// object enabled as `ftpatch enable --init` would (pairtest, independent
// of the patcher), then tampered with. On the old code 10 (gcc) and 12
// (Clang) of these were "live-safe".
func TestAgainstRelocatableTampering(t *testing.T) {
	le := binary.LittleEndian
	put64 := func(b []byte, at int, v uint64) { le.PutUint64(b[at:], v) }
	or64 := func(b []byte, at int, v uint64) { le.PutUint64(b[at:], le.Uint64(b[at:])|v) }
	cases := []struct {
		name   string
		tamper func(t *testing.T, r *rawELF, text string) []byte
	}{
		{"one byte appended", func(t *testing.T, r *rawELF, _ string) []byte { return append(r.b, 0x5a) }},
		{"4 KiB of zeros appended", func(t *testing.T, r *rawELF, _ string) []byte { return append(r.b, make([]byte, 4096)...) }},
		{"8 bytes inserted before the section headers", func(t *testing.T, r *rawELF, _ string) []byte { return insertBefore(r.b, r.shoff, 8, 0xa5) }},
		{"64 zero bytes inserted before the section headers", func(t *testing.T, r *rawELF, _ string) []byte { return insertBefore(r.b, r.shoff, 64, 0) }},
		{"a padding byte between sections", func(t *testing.T, r *rawELF, _ string) []byte { r.b[r.gap(t)] = 0x5a; return r.b }},
		{"section header 0: sh_offset", func(t *testing.T, r *rawELF, _ string) []byte { put64(r.b, r.shdr(0, shOffset), 0x40); return r.b }},
		{"section header 0: sh_name", func(t *testing.T, r *rawELF, _ string) []byte { le.PutUint32(r.b[r.shdr(0, shName):], 1); return r.b }},
		{"section header 0: sh_size", func(t *testing.T, r *rawELF, _ string) []byte { put64(r.b, r.shdr(0, shSize), 7); return r.b }},
		{"section header 0: sh_link", func(t *testing.T, r *rawELF, _ string) []byte { le.PutUint32(r.b[r.shdr(0, shLink):], 3); return r.b }},
		{"section header 0: sh_addralign", func(t *testing.T, r *rawELF, _ string) []byte { put64(r.b, r.shdr(0, shAddralign), 8); return r.b }},
		{"text: upper 32 bits of sh_flags", func(t *testing.T, r *rawELF, text string) []byte {
			or64(r.b, r.shdr(r.sec(t, text), shFlags), 1<<40)
			return r.b
		}},
		{".comment: upper 32 bits of sh_flags", func(t *testing.T, r *rawELF, _ string) []byte {
			or64(r.b, r.shdr(r.sec(t, ".comment"), shFlags), 1<<63)
			return r.b
		}},
		{"text: SHF_WRITE added", func(t *testing.T, r *rawELF, text string) []byte {
			or64(r.b, r.shdr(r.sec(t, text), shFlags), uint64(elf.SHF_WRITE))
			return r.b
		}},
		{"text: sh_addralign doubled", func(t *testing.T, r *rawELF, text string) []byte {
			at := r.shdr(r.sec(t, text), shAddralign)
			put64(r.b, at, 2*max(le.Uint64(r.b[at:]), 1))
			return r.b
		}},
		{"text: sh_addr", func(t *testing.T, r *rawELF, text string) []byte {
			put64(r.b, r.shdr(r.sec(t, text), shAddr), 0x1000)
			return r.b
		}},
		{"text: sh_entsize", func(t *testing.T, r *rawELF, text string) []byte {
			put64(r.b, r.shdr(r.sec(t, text), shEntsize), 4)
			return r.b
		}},
		{"sh_name at another copy of the same name", func(t *testing.T, r *rawELF, _ string) []byte {
			// The index changes, the name it reads does not: only a
			// comparison of the raw header sees it. as stores a name once
			// (merged into the tail of its .rela's); Clang stores some twice.
			shstr := r.sh[binary.LittleEndian.Uint16(r.b[0x3e:])]
			tab := r.b[shstr.Off : shstr.Off+shstr.Size]
			for i := 1; i < len(r.sh); i++ {
				name := append([]byte(r.names[i]), 0)
				for off := 1; off+len(name) <= len(tab); off++ {
					if off != int(r.sh[i].Name) && bytes.Equal(tab[off:off+len(name)], name) {
						le.PutUint32(r.b[r.shdr(i, shName):], uint32(off))
						return r.b
					}
				}
			}
			t.Skip("no section name is stored twice in this object (as merges them)")
			return nil
		}},
		{".symtab: sh_info", func(t *testing.T, r *rawELF, _ string) []byte {
			at := r.shdr(r.symtab, shInfo)
			le.PutUint32(r.b[at:], le.Uint32(r.b[at:])+1)
			return r.b
		}},
		{".bss: sh_size", func(t *testing.T, r *rawELF, _ string) []byte {
			at := r.shdr(r.sec(t, ".bss"), shSize)
			put64(r.b, at, le.Uint64(r.b[at:])+8)
			return r.b
		}},
		{"text's .rela: sh_entsize", func(t *testing.T, r *rawELF, text string) []byte {
			put64(r.b, r.shdr(r.sec(t, ".rela"+text), shEntsize), 48)
			return r.b
		}},
		{"text's .rela: upper bits of sh_flags", func(t *testing.T, r *rawELF, text string) []byte {
			or64(r.b, r.shdr(r.sec(t, ".rela"+text), shFlags), 1<<36)
			return r.b
		}},
		{"ELF header: e_flags", func(t *testing.T, r *rawELF, _ string) []byte { r.b[0x30] ^= 1; return r.b }},
		{"ELF header: EI_PAD", func(t *testing.T, r *rawELF, _ string) []byte { r.b[0x0c] = 1; return r.b }},
		{"ELF header: e_entry", func(t *testing.T, r *rawELF, _ string) []byte { put64(r.b, 0x18, 0x400000); return r.b }},
		{"ELF header: e_ehsize", func(t *testing.T, r *rawELF, _ string) []byte { r.b[0x34]++; return r.b }},
		{"a byte of .comment", func(t *testing.T, r *rawELF, _ string) []byte {
			r.b[r.sh[r.sec(t, ".comment")].Off+1] ^= 0x20
			return r.b
		}},
		{"the null symbol's st_value", func(t *testing.T, r *rawELF, _ string) []byte { put64(r.b, int(r.sh[r.symtab].Off)+8, 4); return r.b }},
		{"an existing symbol's st_other upper bits", func(t *testing.T, r *rawELF, _ string) []byte {
			r.b[int(r.sh[r.symtab].Off)+24+5] |= 0x40
			return r.b
		}},
		{"an added symbol's st_other upper bits", func(t *testing.T, r *rawELF, _ string) []byte {
			s := r.sh[r.symtab]
			r.b[int(s.Off+s.Size)-24+5] |= 0x40
			return r.b
		}},
		{"an added symbol's st_size", func(t *testing.T, r *rawELF, _ string) []byte {
			s := r.sh[r.symtab]
			put64(r.b, int(s.Off+s.Size)-8, 16)
			return r.b
		}},
	}
	for _, src := range []string{"gcc-callops-obj.o", "clang-callops-bti-fsobj.o"} {
		src := testutil.Fixtures(t, src)[0]
		f := pairtest.Scan(t, src)
		o := pairtest.ReadObj(t, src)
		pairtest.RelEnable(t, o, f, nil)
		dir := t.TempDir()
		enabled := filepath.Join(dir, "enabled.o")
		o.Write(t, enabled)
		if r := compareFiles(t, src, enabled); r.Failed() {
			dump(t, r)
			t.Fatalf("%s: the untampered enable fails", src)
		}
		base, err := os.ReadFile(enabled)
		if err != nil {
			t.Fatal(err)
		}
		caught := 0
		for _, c := range cases {
			t.Run(filepath.Base(src)+"/"+c.name, func(t *testing.T) {
				b := c.tamper(t, parseRaw(t, bytes.Clone(base)), f.Sites[0].Section)
				if bytes.Equal(b, base) {
					t.Fatal("the tampering changed nothing")
				}
				p := filepath.Join(t.TempDir(), "tampered.o")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				r, err := compare(src, p, Options{ChunkSize: 4096})
				if err != nil { // refused as malformed: caught too
					caught++
					return
				}
				if !r.Failed() || r.LiveSafe {
					dump(t, r)
					t.Fatal("tampering not caught")
				}
				caught++
			})
		}
		t.Logf("%s: %d of %d tamperings caught", filepath.Base(src), caught, len(cases))
	}
}
