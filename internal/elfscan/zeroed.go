// SPDX-License-Identifier: Apache-2.0
package elfscan

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"

	"github.com/ftpatch/ftpatch/internal/encode"
)

// CodeZeroedEntries is a problem of a file, not of a site: a linked file
// whose entries table has entries, every one of them zero. Zero records are
// skipped, as Linux's ftrace_process_locs skips them (a weak function
// overridden at link time leaves one), so such a file reads as "no sites"
// although it was built with patchable entries: its records were zeroed at
// build time.
const CodeZeroedEntries Code = "zeroed-entries"

// zeroedHelp names the usual cause of an all-zero table.
const zeroedHelp = "likely cause: the records were zeroed at build time: Linux's scripts/sorttable zeroes every " +
	"record it cannot place within a function, so that weak functions overridden at link time are not traced"

// zeroed53Help adds the 5,3 case (%d, %d: the entries that show 5,3 and
// 4,2, see entryShapes): sorttable's arm64 offset is the 4,2 one.
const zeroed53Help = "; these functions have three NOPs before their entry (-fpatchable-function-entry=5,3: " +
	"%d entries show it, %d the 4,2 layout), so each record is 12 bytes before its function, and a sorttable that assumes the " +
	"4,2 offset (before_func = 8 for arm64) zeroes them all; fix: a sorttable that allows 12 bytes before a " +
	"function (patch 0001 of ftpatch's linux/ series), or -fpatchable-function-entry=4,2"

// shapeSample is how many function entries zeroedEntries reads to tell the
// layout the functions were compiled with.
const shapeSample = 4096

// zeroedEntries returns the file's problem when its entries table had
// entries but gave no record (every entry zero, relocations included):
// nil for an ET_REL file, a file without a table, or one with records.
func (sc *scanner) zeroedEntries(records int) []Problem {
	if sc.rel || sc.entries == 0 || records > 0 {
		return nil
	}
	detail := fmt.Sprintf("the entries table (%s, %d entries) holds only zeros, so no patch site can be found; %s",
		sc.entriesName, sc.entries, zeroedHelp)
	if n53, n42 := sc.entryShapes(); n53 > 0 && n53 >= n42 {
		detail += fmt.Sprintf(zeroed53Help, n53, n42)
	}
	return []Problem{{CodeZeroedEntries, detail}}
}

// entryShapes reads the words around up to shapeSample function entries in
// executable sections and counts the entries that show the 5,3 layout (n53)
// and those that show 4,2 (n42). An entry counts when two NOPs follow it
// (after an optional BTI C): for 5,3 when three NOPs precede it and it is
// 4 mod 8 (a 4,2 entry is 8-byte aligned, or its literal is misaligned and
// no padding comes before it), for 4,2 when exactly two NOPs precede it. An
// aligned entry after three NOPs may be 4,2 after a padding NOP: it does not
// count.
func (sc *scanner) entryShapes() (n53, n42 int) {
	for i, n := 0, sc.st.len(); i < n; i++ {
		s := sc.st.sym(uint32(i))
		if n53+n42 >= shapeSample {
			break
		}
		if s.typ() != elf.STT_FUNC || int(s.shndx) >= len(sc.f.Sections) || s.shndx == 0 {
			continue
		}
		sec := sc.f.Sections[s.shndx]
		if sec.Type == elf.SHT_NOBITS || sec.Flags&elf.SHF_EXECINSTR == 0 || s.value < sec.Addr+12 || s.value+12 > sec.Addr+sec.Size {
			continue
		}
		off := int64(sec.Offset + (s.value - 12 - sec.Addr))
		b, err := sc.rd.get(off, 24, int64(sec.Offset+sec.Size))
		if err != nil {
			continue
		}
		switch n := prefixNOPs(b); {
		case n == 3 && s.value%8 == 4:
			n53++
		case n == 2:
			n42++
		}
	}
	return n53, n42
}

// prefixNOPs returns how many NOPs (2 or 3) precede the entry in b, the
// 24 bytes from entry-12, when two NOPs follow the entry and its optional
// BTI C; else 0.
func prefixNOPs(b []byte) int {
	word := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	after := 3
	if encode.IsBTI(word(3)) {
		after = 4
	}
	if word(after) != encode.NOP || word(after+1) != encode.NOP || word(1) != encode.NOP || word(2) != encode.NOP {
		return 0
	}
	if word(0) == encode.NOP {
		return 3
	}
	return 2
}

// FileProblems are the file's own findings (zeroed-entries), not a site's.
func (f *File) FileProblems() []Problem { return f.fileProblems }

// AllProblems yields every problem of the file: its own, then each site's.
func (f *File) AllProblems(yield func(Problem) bool) {
	for _, p := range f.fileProblems {
		if !yield(p) {
			return
		}
	}
	for i := range f.Sites {
		for _, p := range f.Sites[i].Problems() {
			if !yield(p) {
				return
			}
		}
	}
}

// kcfiToolchain reports whether f may hold kCFI type hashes: only Clang
// emits them (-fsanitize=kcfi), and compilers name themselves in .comment.
// A word before a function's NOPs that no symbol covers is then a hash; in
// GCC's output it is code a symbol's size leaves out (an assembly function
// of a kernel, say). Without a .comment the toolchain is unknown: maybe.
func kcfiToolchain(f *elf.File) bool {
	s := f.Section(".comment")
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > 1<<16 {
		return true
	}
	b, err := SafeData(s)
	return err != nil || bytes.Contains(bytes.ToLower(b), []byte("clang"))
}
