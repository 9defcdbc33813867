package elfscan

import "debug/elf"

// Layout is the shape of a patch site.
type Layout string

const (
	LayoutCallOps   Layout = "call-ops"     // =4,2: an 8-byte literal just before the entry
	LayoutCallOps53 Layout = "call-ops-5-3" // =5,3: three words before the entry, the aligned pair holds the literal
	LayoutClassic   Layout = "classic"      // =2: no literal
)

// HasLiteral reports whether sites of layout l carry an ops literal.
func (l Layout) HasLiteral() bool { return l == LayoutCallOps || l == LayoutCallOps53 }

// State is what a site's words say about it.
type State string

const (
	StateNop     State = "nop"     // as compiled
	StateInit    State = "init"    // MOV X9,X30 in slot1
	StateEnabled State = "enabled" // and BL in slot2
	StateUnknown State = "unknown" // anything else; see Site words
)

// Code is a stable problem code; scripts match on these strings.
type Code string

const (
	CodeMisalignedLiteral Code = "misaligned-literal"
	CodeUnexpectedInsn    Code = "unexpected-insn"
	CodeDuplicateEntry    Code = "duplicate-entry"
	CodeOutsideText       Code = "outside-text"
	CodeNoFunction        Code = "no-function"
)

// Codes lists every problem code, in the order the docs give them.
var Codes = []Code{CodeMisalignedLiteral, CodeUnexpectedInsn, CodeDuplicateEntry, CodeOutsideText, CodeNoFunction}

// NoFunctionHelp explains a no-function record: in a linked kernel it is the
// code of a weak function that a strong definition replaced at link time
// (the weak copy stays in .text, without a symbol, and its record stays in
// the table); Linux finds no symbol for it at boot and disables the record.
const NoFunctionHelp = "likely cause: a weak function overridden at link time (its code stays, without a symbol; " +
	"Linux disables such records at boot), or a stripped .symtab; init, enable, disable and verify skip it"

// Problem is one finding at a site.
type Problem struct {
	Code   Code   `json:"code"`
	Detail string `json:"detail"`
}

// Ref is the value of a literal or a BL target. In linked files Addr is the
// value and Sym the symbol defined exactly there, if any. In ET_REL files the
// value comes from a relocation: Sym is its symbol's name, SymIndex its index
// in .symtab and Addr the addend.
type Ref struct {
	Addr     uint64
	Sym      string
	SymIndex uint32
}

// NoOffset marks a slot a site does not have (the literal of a classic site).
const NoOffset int64 = -1

// Site is one patchable function entry.
type Site struct {
	Func         string // containing function, "" when none
	Section      string // section holding the entry
	SectionIndex int    // its index in the section header table
	Record       uint64 // the value in the entries table (where the NOPs start)
	Entry        uint64 // function entry (where BTI C is, if any); ET_REL: offset in Section
	CallSite     uint64 // slot2, which holds or will hold the BL
	Literal      uint64 // address of the literal; valid only when Layout.HasLiteral()
	Spare        uint64 // LayoutCallOps53: the pre-entry word outside the literal (stays NOP)
	Layout       Layout
	BTI          bool
	State        State
	Ops          *Ref // literal value: nil when zero and unrelocated, or classic
	Target       *Ref // BL target: nil unless slot2 holds a BL
	Problems     []Problem

	// Raw words and where they live in the file, for patch and verify.
	LiteralOff  int64  // file offset of the literal, NoOffset for classic
	Slot1Off    int64  // file offset of slot1 (MOV X9,X30)
	Slot2Off    int64  // file offset of slot2 (BL)
	LiteralWord uint64 // bytes at the literal, in the file's byte order (0 for classic)
	Slot1Word   uint32
	Slot2Word   uint32
	SpareOff    int64 // file offset of the spare word, NoOffset unless LayoutCallOps53
	SpareWord   uint32

	// A kCFI type hash just before the pre-entry NOPs (record-4), which
	// patching never touches: CFIHashOff is its file offset, NoOffset when
	// there is none.
	CFIHashOff int64
	CFIHash    uint32
}

// CFIHashAddr is the address of the kCFI type hash (valid when CFIHashOff
// != NoOffset).
func (s *Site) CFIHashAddr() uint64 { return s.Record - 4 }

// Slot1 is the address of the slot that holds or will hold MOV X9,X30.
func (s *Site) Slot1() uint64 { return s.CallSite - 4 }

// HasProblem reports whether the site carries code c.
func (s *Site) HasProblem(c Code) bool {
	for _, p := range s.Problems {
		if p.Code == c {
			return true
		}
	}
	return false
}

// File is the scan of one ELF file.
type File struct {
	Path  string
	Type  elf.Type // ET_REL, ET_EXEC or ET_DYN
	Sites []Site
}

// Problems counts the problems across all sites.
func (f *File) Problems() int {
	n := 0
	for i := range f.Sites {
		n += len(f.Sites[i].Problems)
	}
	return n
}
