package patch

import (
	"debug/elf"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ftpatch/ftpatch/internal/elfscan"
)

// symIndex finds symbols of a linked file by name: .symtab first, then
// .dynsym.
type symIndex struct {
	tables [][]elf.Symbol
	names  []string // table names, for messages
}

func loadSymIndex(f *elf.File) (*symIndex, error) {
	si := &symIndex{}
	for _, t := range []struct {
		name string
		load func() ([]elf.Symbol, error)
	}{{".symtab", f.Symbols}, {".dynsym", f.DynamicSymbols}} {
		syms, err := safeSymbols(t.load)
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("%w: %s: %w", elfscan.ErrMalformed, t.name, err)
		}
		si.tables = append(si.tables, syms)
		si.names = append(si.names, t.name)
	}
	return si, nil
}

func safeSymbols(load func() ([]elf.Symbol, error)) (syms []elf.Symbol, err error) {
	defer func() {
		if p := recover(); p != nil {
			syms, err = nil, fmt.Errorf("%v", p)
		}
	}()
	return load()
}

// lookup returns the address of the defined symbol name: from .symtab if it
// is there, else .dynsym. Several definitions at different addresses (static
// symbols of different files) are ambiguous.
func (si *symIndex) lookup(name string) (uint64, error) {
	for t, syms := range si.tables {
		addrs := map[uint64]bool{}
		for _, s := range syms {
			if s.Name == name && s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) != elf.STT_SECTION && elf.ST_TYPE(s.Info) != elf.STT_FILE {
				addrs[s.Value] = true
			}
		}
		switch len(addrs) {
		case 0:
			continue
		case 1:
			for a := range addrs {
				return a, nil
			}
		default:
			var l []string
			for a := range addrs {
				l = append(l, fmt.Sprintf("%#x", a))
			}
			sort.Strings(l)
			return 0, fmt.Errorf("%w: symbol %q is ambiguous: %s defines it at %d addresses (%s); give the address as 0x…",
				ErrSymbol, name, si.names[t], len(addrs), strings.Join(l, ", "))
		}
	}
	return 0, fmt.Errorf("%w: symbol %q is not defined in .symtab or .dynsym", ErrSymbol, name)
}
