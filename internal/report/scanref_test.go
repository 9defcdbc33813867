// SPDX-License-Identifier: Apache-2.0

package report

import (
	"debug/elf"

	"github.com/ftpatch/ftpatch/internal/elfscan"
)

// Scan is f's `scan --json` object, built as a value: the reference the
// streaming encoder (AppendScan, which writes the same bytes without
// building it) is tested against through encoding/json. Tests only.
func Scan(f *elfscan.File) ScanFile {
	out := ScanFile{File: f.Path, ElfType: ELFType(f.Type), Sites: make([]ScanSite, len(f.Sites)), Problems: f.Problems()}
	for i := range f.Sites {
		out.Sites[i] = Site(&f.Sites[i], f.Type == elf.ET_REL)
	}
	for _, p := range f.FileProblems() {
		out.FileProblems = append(out.FileProblems, ShowProblem{Code: string(p.Code), Detail: p.Detail})
	}
	return out
}
