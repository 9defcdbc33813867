// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// savedOf is what scan --json prints for the files at paths, stamped.
func savedOf(t testing.TB, paths ...string) []byte {
	var b bytes.Buffer
	w := NewVersionStamp(&b, "v0-test")
	for _, p := range paths {
		f, err := scantest.File(p)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(AppendScan(nil, f))
	}
	return b.Bytes()
}

// A saved scan reads back as the scan wrote it: every line's file, and
// each site's function, section, entry, layout and problems.
func TestSavedScanRoundTrip(t *testing.T) {
	var paths []string
	for _, p := range testutil.Fixtures(t, "*") {
		if input.Identify(p) == nil {
			paths = append(paths, p)
		}
	}
	data := savedOf(t, paths...)
	data = append(data, `{"ftpatch":"v0-test","file":"gone.ko","error":"file gone.ko: no such file"}`+"\n"...)
	data = append(data, `{"ftpatch":"v0-test","summary":{"inputs":3}}`+"\n"...)
	s, err := ReadSavedScan(bytes.NewReader(data), "saved.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Lines) != len(paths)+1 || s.Lines[len(paths)].Error == "" {
		t.Fatalf("%d lines, want %d and the error line last", len(s.Lines), len(paths)+1)
	}
	for i, p := range paths {
		f, _ := scantest.File(p)
		elfType, sites, err := s.Sites(i)
		if err != nil || s.Lines[i].File != p || elfType != ELFType(f.Type) || len(sites) != len(f.Sites) {
			t.Fatalf("line %d: %q %s, %d sites, %v; want %q %s, %d sites", i, s.Lines[i].File, elfType, len(sites), err, p, ELFType(f.Type), len(f.Sites))
		}
		for k, ss := range sites {
			want := &f.Sites[k]
			var codes []string
			for _, pr := range want.Problems() {
				codes = append(codes, string(pr.Code))
			}
			if ss.Func != want.Func || ss.Section != want.Section || uint64(ss.Entry) != want.Entry() || ss.Layout != want.Layout.String() ||
				strings.Join(ss.Problems, ",") != strings.Join(codes, ",") || len(ss.ProblemDetails) != len(codes) {
				t.Fatalf("%s site %d: read %+v, scanned %s %s %#x %s %v", p, k, ss, want.Func, want.Section, want.Entry(), want.Layout, codes)
			}
		}
	}
}

// What is not a saved scan is refused, naming the line.
func TestSavedScanRefuses(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"", "holds no input's line"},
		{`{"ftpatch":"v","summary":{}}` + "\n", "holds no input's line"},
		{`{"file":"a.o","elf_type":"REL","sites":[]}` + "\n", `line 1: a line's first key is not "ftpatch"`},
		{`{"ftpatch":"v","file":"a.o","elf_type":"REL","sites":3,"passed":3}` + "\n", "line 1: file a.o: not a scan --json line (verify's?)"},
		{`{"ftpatch":"v","orig":"a.o","file":"b.o"}` + "\n", "holds no input's line"},
		{"[1,2]\n", "line 1: not a JSON object"},
	} {
		_, err := ReadSavedScan(strings.NewReader(tc.data), "s.jsonl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.data, err, tc.want)
		}
	}
}

// A line longer than the reader's buffer (a kernel's is ~10 MB) is indexed
// without being held, and read back whole.
func TestSavedScanLongLine(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"ftpatch":"v","file":"vmlinux","elf_type":"DYN","sites":[`)
	n := 3 * headMax / 150
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"func":"f%d","section":".text","entry":"0x%x","layout":"call-ops","problems":[],"problem_details":[]}`, i, 0x1000+8*i)
	}
	b.WriteString("],\"problems\":0}\n")
	b.WriteString(`{"ftpatch":"v","file":"m.ko","elf_type":"REL","sites":[],"problems":0}` + "\n")
	s, err := ReadSavedScan(strings.NewReader(b.String()), "big.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Lines) != 2 || s.Lines[1].File != "m.ko" {
		t.Fatalf("lines %+v", s.Lines)
	}
	_, sites, err := s.Sites(0)
	if err != nil || len(sites) != n || sites[n-1].Func != fmt.Sprintf("f%d", n-1) {
		t.Fatalf("%d sites, %v; want %d", len(sites), err, n)
	}
}

// The reader of saved scans: never a panic; an error means no result.
func FuzzReadSavedScan(f *testing.F) {
	f.Add(savedOf(f, testutil.Fixtures(f, "gcc-callops-module.ko")...))
	f.Add([]byte(`{"ftpatch":"v","file":"a","error":"e"}` + "\n" + `{"ftpatch":"v","summary":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSavedScan(bytes.NewReader(data), "fuzz")
		if err != nil {
			if s != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		for i := range s.Lines {
			if _, sites, err := s.Sites(i); err != nil && sites != nil {
				t.Fatalf("line %d: error %v with sites", i, err)
			}
		}
	})
}
