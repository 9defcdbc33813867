// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/scantest"
)

// Load opens the file at path as the commands do (elfscan.Open) and lays
// it out (LoadObject): the tests' one-call path to an Image.
func Load(path string, opts Options) (*Image, error) {
	o, err := elfscan.Open(path)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return LoadObject(o, opts)
}

// TestMalformedEntriesRelocations: a relocation table of the patch entries
// whose sh_info is not a section, or is a section without contents, is
// the same error in scan, patch and verify (all read it through the one
// elfscan.Object), and it is an error, not "0 sites".
func TestMalformedEntriesRelocations(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-obj.o")[0]
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	rela, nobits, text, entries := -1, -1, -1, -1
	for i, s := range f.Sections {
		if s.Name == ".text" {
			text = i
		}
		if s.Name == elfscan.EntriesSection && entries < 0 {
			entries = i
		}
		if s.Type == elf.SHT_RELA && s.Info > 0 && int(s.Info) < len(f.Sections) && f.Sections[s.Info].Name == elfscan.EntriesSection {
			rela = i
		}
		if s.Type == elf.SHT_NOBITS && nobits < 0 {
			nobits = i
		}
	}
	if rela < 0 || nobits < 0 || text < 0 || entries < 0 {
		t.Fatalf("%s: no relocations of %s (%d), no SHT_NOBITS section (%d), no .text (%d) or no entries (%d)",
			src, elfscan.EntriesSection, rela, nobits, text, entries)
	}
	shoff := binary.LittleEndian.Uint64(orig[0x28:])
	// Each row writes one 32-bit field of one section header (sh_type at
	// +4, sh_info at +44).
	for _, tc := range []struct {
		name       string
		sec, field int
		value      uint32
		want       string
	}{
		{"sh_info out of range", rela, 44, 0xfff0, "sh_info"},
		{"sh_info zero", rela, 44, 0, "sh_info"},
		{"sh_info NOBITS", rela, 44, uint32(nobits), "SHT_NOBITS"},
		{"sh_info another section with contents", rela, 44, uint32(text), "sh_info is wrong"},
		{"entries table NOBITS", entries, 4, uint32(elf.SHT_NOBITS), "SHT_NOBITS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			binary.LittleEndian.PutUint32(b[shoff+uint64(tc.sec)*64+uint64(tc.field):], tc.value)
			p := filepath.Join(t.TempDir(), "bad.o")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, scanErr := scantest.File(p)
			in, patchErr := patch.Open(p)
			if in != nil {
				in.Close()
			}
			img, verifyErr := Load(p, Options{})
			if img != nil {
				img.Close()
			}
			for cmd, err := range map[string]error{"scan": scanErr, "patch": patchErr, "verify": verifyErr} {
				if !errors.Is(err, elfscan.ErrMalformed) || !strings.Contains(fmtErr(err), tc.want) {
					t.Errorf("%s: error %v, want ErrMalformed naming %s", cmd, err, tc.want)
				}
			}
			if fmtErr(scanErr) != fmtErr(patchErr) || fmtErr(scanErr) != fmtErr(verifyErr) {
				t.Errorf("different errors:\n scan:   %v\n patch:  %v\n verify: %v", scanErr, patchErr, verifyErr)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
