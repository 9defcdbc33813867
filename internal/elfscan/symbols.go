// SPDX-License-Identifier: Apache-2.0

package elfscan

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Symtab is one symbol table of an Object, read once. Its methods are safe
// for concurrent use.
type Symtab struct {
	st  *symtab
	sec *elf.Section // nil: the file has no such table
}

// Sym is one symbol: Index is its index in its table (relocations refer to
// it), 0 being the null symbol.
type Sym struct {
	Index   uint32
	Name    string
	Value   uint64 // ET_REL: offset in Section
	Size    uint64
	Section elf.SectionIndex
	Info    uint8
	Other   uint8 // st_other: visibility (STV_*)
}

// Type is the symbol's STT_ type.
func (s Sym) Type() elf.SymType { return elf.ST_TYPE(s.Info) }

// Bind is the symbol's STB_ binding.
func (s Sym) Bind() elf.SymBind { return elf.ST_BIND(s.Info) }

// Defined reports whether the symbol is defined (not SHN_UNDEF).
func (s Sym) Defined() bool { return s.Section != elf.SHN_UNDEF }

// Name is the table's section name (".symtab", ".dynsym"), or "" when the
// file has none.
func (t *Symtab) Name() string {
	if t.sec == nil {
		return ""
	}
	return t.sec.Name
}

// SectionHeader returns the table's section, or nil.
func (t *Symtab) SectionHeader() *elf.Section { return t.sec }

// Len is the number of entries, the null symbol included (0 for no table).
func (t *Symtab) Len() int { return t.st.len() }

// Sym returns symbol i; ok is false when i is out of range.
func (t *Symtab) Sym(i uint32) (s Sym, ok bool) {
	if int(i) >= t.st.len() {
		return Sym{}, false
	}
	r := t.st.sym(i)
	return Sym{Index: i, Name: t.st.name(int32(i)), Value: r.value, Size: r.size, Section: elf.SectionIndex(r.shndx), Info: r.info, Other: r.other}, true
}

// view is a private copy of the index for one lookup: lower's hint is
// per view, so concurrent lookups do not share it.
func (t *Symtab) view() *symtab { v := *t.st; v.hint = 0; return &v }

func (t *Symtab) sym(i int32) (Sym, bool) {
	if i < 0 {
		return Sym{}, false
	}
	return t.Sym(uint32(i))
}

// Func returns the function symbol defined exactly at (sec, v): sized
// functions first, then unsized ones, then untyped symbols; global before
// local. sec is the section index in an ET_REL file, 0 in a linked one.
func (t *Symtab) Func(sec int, v uint64) (Sym, bool) {
	return t.sym(t.view().at(uint32(sec), v, 2))
}

// Containing returns the sized function symbol covering (sec, v).
func (t *Symtab) Containing(sec int, v uint64) (Sym, bool) {
	return t.sym(t.view().containing(uint32(sec), v))
}

// At names the symbol defined exactly at (sec, v), as scan names a BL
// target or an ops: a function, else a data object, else any other symbol.
func (t *Symtab) At(sec int, v uint64) (Sym, bool) {
	return t.sym(t.view().named(uint32(sec), v))
}

// each calls fn with the index of every symbol named name. It reads only
// each entry's name field (in place, as index does) and the string table
// where it could match.
func (st *symtab) each(name string, fn func(i int)) {
	raw, strtab := st.raw, st.strtab
	for i, off := 1, symSize; off <= len(raw)-symSize; i, off = i+1, off+symSize {
		at := int(binary.LittleEndian.Uint32(raw[off:]))
		end := at + len(name)
		if end <= len(strtab) && (end == len(strtab) || strtab[end] == 0) && string(strtab[at:end]) == name {
			fn(i)
		}
	}
}

// Undefined returns the index of the first undefined reference named name
// (not a section or file symbol), or 0.
func (t *Symtab) Undefined(name string) uint32 {
	found := 0
	t.st.each(name, func(i int) {
		s := t.st.sym(uint32(i))
		if found == 0 && s.shndx == uint16(elf.SHN_UNDEF) && s.typ() != elf.STT_SECTION && s.typ() != elf.STT_FILE {
			found = i
		}
	})
	return uint32(found)
}

// lookup applies the one ambiguity policy to one table: the defined
// symbols named name (section and file symbols excepted); one place (ET_REL:
// section and offset; linked: address) is an answer, global before local,
// then the lowest index; several places are ambiguous.
func (t *Symtab) lookup(name string, sections []*elf.Section) (Sym, bool, error) {
	type place struct {
		sec   uint16
		value uint64
	}
	var best int32 = -1
	var places []place
	t.st.each(name, func(i int) {
		s := t.st.sym(uint32(i))
		if s.shndx == uint16(elf.SHN_UNDEF) || s.typ() == elf.STT_SECTION || s.typ() == elf.STT_FILE {
			return
		}
		p := place{value: s.value}
		if t.st.rel {
			p.sec = s.shndx
		}
		if !slices.Contains(places, p) {
			places = append(places, p)
		}
		if best < 0 || elf.ST_BIND(t.st.sym(uint32(best)).info) == elf.STB_LOCAL && elf.ST_BIND(s.info) != elf.STB_LOCAL {
			best = int32(i)
		}
	})
	switch len(places) {
	case 0:
		return Sym{}, false, nil
	case 1:
		s, _ := t.Sym(uint32(best))
		return s, true, nil
	}
	l := make([]string, len(places))
	for k, p := range places {
		switch {
		case !t.st.rel:
			l[k] = fmt.Sprintf("%#x", p.value)
		case int(p.sec) < len(sections):
			l[k] = fmt.Sprintf("%s+%#x", sections[p.sec].Name, p.value)
		default:
			l[k] = fmt.Sprintf("section %d+%#x", p.sec, p.value)
		}
	}
	slices.Sort(l)
	fix := "give the address (0x…) instead of the name"
	if t.st.rel {
		fix = "rename one of them (objcopy --redefine-sym) or give a symbol defined once"
	}
	return Sym{}, false, &SymbolError{Name: name, Kind: ErrSymbolAmbiguous,
		Detail: fmt.Sprintf("is ambiguous: %s defines it at %d places (%s); %s", t.Name(), len(places), strings.Join(l, ", "), fix)}
}

// Lookup finds the defined symbol named name, under the one policy every
// command uses: .symtab if it defines the name, else .dynsym; section and
// file symbols never match; definitions at one place (aliases, a global and
// its local copy) are one answer (global first), definitions at several
// places (static symbols of different files) are an error listing them and
// saying what to do. The error is a *SymbolError.
func (o *Object) Lookup(name string) (Sym, error) {
	tables := []func() (*Symtab, error){o.Symbols, o.DynSymbols}
	var names []string
	for _, get := range tables {
		t, err := get()
		if err != nil {
			return Sym{}, err
		}
		if t.sec == nil || slices.Contains(names, t.Name()) {
			continue
		}
		names = append(names, t.Name())
		s, ok, err := t.lookup(name, o.f.Sections)
		if err != nil || ok {
			return s, err
		}
	}
	where := "is not defined: the file has no symbol table"
	if len(names) > 0 {
		where = "is not defined in " + strings.Join(names, " or ")
	}
	return Sym{}, &SymbolError{Name: name, Kind: ErrSymbolNotFound, Detail: where}
}

// SymName names symbol i of the symbol table for messages: a section
// symbol by its section's name, an out-of-range index as #i.
func (o *Object) SymName(i uint32) string {
	t, err := o.Symbols()
	if err != nil {
		return fmt.Sprintf("#%d", i)
	}
	s, ok := t.Sym(i)
	if !ok {
		return fmt.Sprintf("#%d", i)
	}
	if s.Type() == elf.STT_SECTION && int(s.Section) < len(o.f.Sections) {
		return o.f.Sections[s.Section].Name
	}
	return s.Name
}

// Lookup's errors: errors.Is tells which.
var (
	ErrSymbolNotFound  = errors.New("symbol not defined")
	ErrSymbolAmbiguous = errors.New("symbol ambiguous")
)

// SymbolError is a failed lookup by name. Its message says what to do.
type SymbolError struct {
	Name   string
	Kind   error // ErrSymbolNotFound or ErrSymbolAmbiguous
	Detail string
}

func (e *SymbolError) Error() string { return fmt.Sprintf("symbol %q %s", e.Name, e.Detail) }

func (e *SymbolError) Unwrap() error { return e.Kind }
