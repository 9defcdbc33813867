// SPDX-License-Identifier: Apache-2.0

// Package elfscan owns reading arm64 ELF inputs: the bytes of a path come
// from package input (plain, or xz/zstd/gzip-compressed, decompressed in
// memory behind a size cap; special files refused), then the one object model every command takes (Object: the *elf.File, its symbol
// tables with the one lookup policy, the ET_REL relocation index, the
// dynamic relocations applied by one set of rules, the address <-> section
// and file offset maps), and the scan that turns a file into plain values
// (File, Site) that the patch and verify packages consume (a Rela gives its
// Elf64_Rela form, Rela64, for patch's ET_REL rewrite; package elfwrite
// writes it). A large file's scan can be handed over in
// ordered chunks (ScanChunks) so that its sites are never held whole. It
// never writes files and prints nothing: how a scan is shown (--json
// shapes, text tables) is package report's.
//
// Invariants:
//   - Nothing panics on malformed input: debug/elf's panics become
//     ErrMalformed errors naming the section or offset that was wrong, and
//     no result.
//   - An Object computes each derived view at most once and is safe for
//     concurrent use; its scan result is shared and must not be modified.
//   - Unknown relocation types where a value is needed are errors
//     (ErrUnsupportedReloc), never silently skipped.
//   - The scan is deterministic: sites are sorted by (section index, entry).
//   - Addresses are mapped through section headers (then PT_LOAD segments),
//     never assuming sh_addr == sh_offset.
//
// A site in the call-ops layout (-fpatchable-function-entry=4,2):
//
//	record ->  literal+0: NOP | low word of ops        (8-byte aligned)
//	           literal+4: NOP | high word of ops
//	entry  ->  [BTI C]
//	           slot1:     NOP | MOV X9, X30
//	call   ->  slot2:     NOP | BL <trampoline>
//
// The call-ops layout with three NOPs before the entry
// (-fpatchable-function-entry=5,3), so no function needs 8-byte alignment:
//
//	record ->  record+0:  NOP | literal (low word)   one of the two 8-byte
//	           record+4:  NOP | literal              pairs is 8-byte aligned:
//	           record+8:  NOP | literal (high word)  it holds the literal; the
//	entry  ->  [BTI C]                               other word, the spare,
//	           slot1:     NOP | MOV X9, X30          stays a NOP
//	call   ->  slot2:     NOP | BL <trampoline>
//
// The classic layout (=2) has no literal; its record points at slot1.
//
// With Clang's kCFI (-fsanitize=kcfi) a 4-byte type hash precedes the
// NOPs (at record-4); it is data, never patched.
package elfscan
