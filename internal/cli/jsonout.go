package cli

// Every JSON line ftpatch prints starts with the tool's version,
// {"ftpatch":"v1.2.3", ...}, so a log of JSON lines says which build wrote
// it. The encoders (elfscan's streaming scan encoder, verify's reports)
// know nothing of it: versionStamp adds the key as the lines go out.

import (
	"bytes"
	"encoding/json"
	"io"
)

// versionStamp writes what it is given to w, turning the '{' that opens
// each line into {"ftpatch":VERSION,. Every line written through it must be
// a non-empty JSON object.
type versionStamp struct {
	w       io.Writer
	head    []byte // {"ftpatch":"…",
	midLine bool   // the last byte written was not a newline
}

func newVersionStamp(w io.Writer) *versionStamp {
	v, _ := json.Marshal(Version())
	head := append([]byte(`{"ftpatch":`), v...)
	return &versionStamp{w: w, head: append(head, ',')}
}

func (s *versionStamp) Write(p []byte) (int, error) {
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

// errorJSON is the line of an input that could not be processed: the
// error is the stderr message without its "ftpatch: " prefix.
type errorJSON struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// writeJSONLine encodes v as one line.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
