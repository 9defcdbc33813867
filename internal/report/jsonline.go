// SPDX-License-Identifier: Apache-2.0

package report

// Every JSON line ftpatch prints starts with the tool's version,
// {"ftpatch":"v1.2.3", ...}, so a log of JSON lines says which build wrote
// it. The shapes and encoders know nothing of it: VersionStamp adds the key
// as the lines go out.

import (
	"bytes"
	"encoding/json"
	"io"
)

// VersionStamp writes what it is given to w, turning the '{' that opens
// each line into {"ftpatch":VERSION,. Every line written through it must be
// a non-empty JSON object.
type VersionStamp struct {
	w       io.Writer
	head    []byte // {"ftpatch":"…",
	midLine bool   // the last byte written was not a newline
}

// NewVersionStamp stamps the lines written to w with version.
func NewVersionStamp(w io.Writer, version string) *VersionStamp {
	v, _ := json.Marshal(version)
	head := append([]byte(`{"ftpatch":`), v...)
	return &VersionStamp{w: w, head: append(head, ',')}
}

func (s *VersionStamp) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if !s.midLine && p[0] == '{' {
			if _, err := s.w.Write(s.head); err != nil {
				return n, err
			}
			p = p[1:]
			n++
			s.midLine = true
			continue
		}
		end := len(p)
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			end = i + 1
		}
		m, err := s.w.Write(p[:end])
		n += m
		if err != nil {
			return n, err
		}
		s.midLine = p[end-1] != '\n'
		p = p[end:]
	}
	return n, nil
}

// Flush flushes the writer under s, when it has a Flush method (a
// bufio.Writer), so that a line is out before a message on stderr.
func (s *VersionStamp) Flush() error {
	if f, ok := s.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// InputError is the line of an input that could not be processed (object
// error): the error is the stderr message without its "ftpatch: " prefix.
type InputError struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// WriteLine writes v as one line of JSON (json.Marshal: with HTML
// escaping, as every shape but the hand-encoded scan line has always had).
func WriteLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
