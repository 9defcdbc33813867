// SPDX-License-Identifier: Apache-2.0

package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/quick"
)

// Oracles: fmt's %#x for hex, encoding/json for quoting.

func TestHexMatchesFmt(t *testing.T) {
	f := func(v uint64) bool {
		h := Hex(v)
		want := fmt.Sprintf("%#x", v)
		if v == 0 {
			want = "0x0" // %#x writes 0 as "0x0" too; said for the reader
		}
		j, err := json.Marshal(h)
		var back Hex
		uerr := json.Unmarshal(j, &back)
		return h.String() == want && err == nil && string(j) == `"`+want+`"` && uerr == nil && back == h
	}
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
	for _, v := range []uint64{0, 1, 0xf, 1 << 63, ^uint64(0)} {
		if !f(v) {
			t.Errorf("Hex(%#x) = %s", v, Hex(v))
		}
	}
}

func TestHexUnmarshalErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"10"`, `hex value "10": want 0x followed by hex digits`},
		{`"0x"`, `hex value "0x": want 0x followed by hex digits`},
		{`"0xg"`, `hex value "0xg": strconv.ParseUint: parsing "g": invalid syntax`},
		{`"0x10000000000000000"`, `value out of range`},
		{`16`, `hex value 16: not a JSON string`},
	} {
		var h Hex
		err := json.Unmarshal([]byte(tc.in), &h)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Unmarshal(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
	var h Hex
	if err := json.Unmarshal([]byte(`"0XFF"`), &h); err != nil || h != 0xff {
		t.Errorf(`Unmarshal("0XFF") = %v, %v`, h, err)
	}
}

func TestPlaceRelExprWord(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Place(true, ".text", 0x10), ".text+0x10"},
		{Place(false, ".text", 0x10), "0x10"},
		{Place(true, ".text", 0), ".text+0x0"},
		{RelExpr("ops", 0), "ops"},
		{RelExpr("ops", 16), "ops+0x10"},
		{RelExpr("ops", -8), "ops-0x8"},
		{RelExpr("x", -1<<63), "x-0x8000000000000000"},
		{Word([]byte{0x1f, 0x20, 0x03, 0xd5}), "d503201f"},
		{Word([]byte{0, 0x10, 0x40, 0, 0, 0, 0, 0}), "0000000000401000"},
		{Word([]byte{1, 2}), "0102"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestAppendJSONStringMatchesEncodingJSON over random and hostile strings,
// with and without HTML escaping.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	check := func(s string) bool {
		ok := true
		for _, html := range []bool{false, true} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSuffix(buf.String(), "\n")
			if got := string(AppendJSONString(nil, s, html)); got != want {
				t.Errorf("html=%v %q: got %s, want %s", html, s, got, want)
				ok = false
			}
		}
		return ok
	}
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "<&>", "\u2028\u2029", "\xff\xfe", "é\xc3", "\t\n\r\b\f"} {
		check(s)
	}
	if err := quick.Check(check, nil); err != nil {
		t.Error(err)
	}
	if err := quick.Check(func(b []byte) bool { return check(string(b)) }, nil); err != nil {
		t.Error(err)
	}
}

// FileKind over real files of each kind the tests can make: the oracle is
// the kind the test made.
func TestFileKind(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "f")
	fifo := filepath.Join(dir, "p")
	if err := os.WriteFile(reg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ path, want string }{
		{reg, "a regular file"}, {dir, "a folder"}, {fifo, "a FIFO"},
		{filepath.Join(dir, "s"), "a socket"}, {"/dev/null", "a character device"},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := FileKind(fi.Mode()); got != tc.want {
			t.Errorf("%s: FileKind = %q, want %q", tc.path, got, tc.want)
		}
	}
	if got := FileKind(fs.ModeDevice); got != "a block device" {
		t.Errorf("block device: %q", got)
	}
	if got := FileKind(fs.ModeIrregular); got != "a special file" {
		t.Errorf("irregular: %q", got)
	}
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n      int
		noun   string
		plural []string
		want   string
	}{
		{0, "site", nil, "0 sites"},
		{1, "site", nil, "1 site"},
		{2, "problem", nil, "2 problems"},
		{1, "intermediate state", nil, "1 intermediate state"},
		{7, "was", []string{"were"}, "7 were"},
		{1, "was", []string{"were"}, "1 was"},
	} {
		if got := Count(c.n, c.noun, c.plural...); got != c.want {
			t.Errorf("Count(%d, %q, %q) = %q, want %q", c.n, c.noun, c.plural, got, c.want)
		}
	}
}
