// SPDX-License-Identifier: Apache-2.0

package report

// Reading back a saved `scan --json` output (docs/json.md), for diff: the
// base build's scan kept by a CI job. A kernel's is ~20 MB; it is indexed
// once (each line's file, and where the line is), and one input's sites
// are decoded when asked for, so two whole builds are never held.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ftpatch/ftpatch/internal/render"
)

// ErrNotSavedScan says a file is not a saved scan --json output.
var ErrNotSavedScan = errors.New("not a saved scan --json output")

// SavedLine is one input's line of a saved scan.
type SavedLine struct {
	File  string // as the scan printed it
	Error string // the line of an input the scan could not read: its message
	off   int64
	n     int
}

// SavedScan is an indexed saved scan: its input lines in order (error
// lines included; other lines, such as a run's summary, left out).
type SavedScan struct {
	r     io.ReaderAt
	Lines []SavedLine
}

// LooksSaved reports whether head, a file's first bytes, looks like JSON
// lines ftpatch wrote: an object whose first key is "ftpatch".
func LooksSaved(head []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte(`{"ftpatch":`))
}

// headMax is the most of a line read to find its file: the "ftpatch" and
// "file" keys come first.
const headMax = 1 << 20

// ReadSavedScan indexes the saved scan read from r: every line is read
// once, only its first keys decoded. name is the file, for messages.
func ReadSavedScan(r io.ReaderAt, name string) (*SavedScan, error) {
	s := &SavedScan{r: r}
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, 1<<62), headMax)
	var off int64
	for lineNo := 1; ; lineNo++ {
		head, n, err := readLine(br)
		if n == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s line %d: %w", name, lineNo, err)
		}
		if len(bytes.TrimSpace(head)) > 0 {
			l, keep, herr := savedHead(head)
			if herr != nil {
				return nil, fmt.Errorf("%w: %s line %d: %w", ErrNotSavedScan, name, lineNo, herr)
			}
			if keep {
				l.off, l.n = off, n
				s.Lines = append(s.Lines, l)
			}
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
	}
	if len(s.Lines) == 0 {
		return nil, fmt.Errorf("%w: %s holds no input's line", ErrNotSavedScan, name)
	}
	return s, nil
}

// readLine reads one line from br: its first bytes (up to headMax) and its
// length with the newline; the rest is skipped, never held.
func readLine(br *bufio.Reader) (head []byte, n int, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if head == nil {
			head = append([]byte(nil), chunk...)
		}
		n += len(chunk)
		if err != bufio.ErrBufferFull {
			return head, n, err
		}
	}
}

// savedHead reads a line's first keys: ftpatch, then file, then error (an
// input the scan could not read) or elf_type and an array of sites (a
// scan line); a line whose second key is not file is about no input (a
// run's summary) and is skipped.
func savedHead(head []byte) (l SavedLine, keep bool, err error) {
	d := json.NewDecoder(bytes.NewReader(head))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return l, false, fmt.Errorf("not a JSON object")
	}
	var version, elfType string
	if k, err := nextKey(d, &version); err != nil || k != "ftpatch" {
		return l, false, fmt.Errorf(`a line's first key is not "ftpatch"`)
	}
	if k, err := nextKey(d, nil); err != nil || k != "file" {
		return l, false, err // a run's summary, or another line about no input
	}
	if err := d.Decode(&l.File); err != nil {
		return l, false, err
	}
	switch k, err := nextKey(d, nil); {
	case err != nil:
		return l, false, err
	case k == "error":
		return l, true, d.Decode(&l.Error)
	case k == "elf_type":
		if err := d.Decode(&elfType); err != nil {
			return l, false, err
		}
	default:
		return l, false, fmt.Errorf("file %s: not a scan --json line", l.File)
	}
	if k, err := nextKey(d, nil); err != nil || k != "sites" {
		return l, false, fmt.Errorf("file %s: not a scan --json line", l.File)
	}
	if t, err := d.Token(); err != nil || t != json.Delim('[') {
		return l, false, fmt.Errorf("file %s: not a scan --json line (verify's?)", l.File)
	}
	return l, true, nil
}

// nextKey reads the next key of an object, and its value into v when v is
// not nil.
func nextKey(d *json.Decoder, v any) (string, error) {
	t, err := d.Token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("not a key: %v", t)
	}
	if v != nil {
		return k, d.Decode(v)
	}
	return k, nil
}

// SavedSite is a site as a saved scan has it.
type SavedSite struct {
	Func           string     `json:"func"`
	Section        string     `json:"section"`
	Entry          render.Hex `json:"entry"`
	Layout         string     `json:"layout"`
	Problems       []string   `json:"problems"`
	ProblemDetails []string   `json:"problem_details"`
}

// Sites decodes the sites of line i, and its file's elf_type.
func (s *SavedScan) Sites(i int) (elfType string, sites []SavedSite, err error) {
	l := s.Lines[i]
	b := make([]byte, l.n)
	if _, err := s.r.ReadAt(b, l.off); err != nil && err != io.EOF {
		return "", nil, err
	}
	var line struct {
		ELFType string      `json:"elf_type"`
		Sites   []SavedSite `json:"sites"`
	}
	if err := json.Unmarshal(b, &line); err != nil {
		return "", nil, fmt.Errorf("%w: the line of %s: %w", ErrNotSavedScan, l.File, err)
	}
	return line.ELFType, line.Sites, nil
}
