// SPDX-License-Identifier: Apache-2.0

package elfscan

import "io"

// What elfscan's own tests call and production has no use for.

// ScanFile scans the (possibly compressed) ELF file at path.
func ScanFile(path string) (*File, error) {
	o, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return o.Scan()
}

// Scan finds every patch site in the ELF file read from r (see
// Object.Scan). path is recorded in the result and used in messages only.
func Scan(r io.ReaderAt, path string) (*File, error) {
	o, err := NewObject(r, path)
	if err != nil {
		return nil, err
	}
	return o.Scan()
}

// Mapped reports whether the table's entries and names are views of the
// file (Object.mapped), not copies.
func (t *Symtab) Mapped() bool { return t.st.raw != nil && !t.st.owned }
