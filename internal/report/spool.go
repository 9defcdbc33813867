// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"io"
	"os"
)

// spoolMem is how much of a spool stays in memory before the rest goes to
// a temporary file.
const spoolMem = 1 << 20

// spool holds bytes that must be written after something not yet known
// (a JUnit suite's testcases come before its counts are known, which its
// opening tag carries): the first spoolMem bytes in memory, the rest in an
// unnamed temporary file, so that a kernel's 50,000 testcases cost no more
// memory than a module's.
type spool struct {
	mem  bytes.Buffer
	file *os.File // after mem is full; removed from its folder at once
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && s.mem.Len()+len(p) <= spoolMem {
		return s.mem.Write(p)
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "ftpatch-spool-*")
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name()) // unnamed: it goes when closed, or with the process
		s.file = f
	}
	return s.file.Write(p)
}

// writeTo writes what s holds to w, in order, and empties s.
func (s *spool) writeTo(w io.Writer) error {
	if _, err := s.mem.WriteTo(w); err != nil {
		return err
	}
	if s.file == nil {
		return nil
	}
	f := s.file
	s.file = nil
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, f)
	return err
}

// close drops what s holds.
func (s *spool) close() {
	s.mem.Reset()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}
