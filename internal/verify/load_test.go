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
)

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
	rela, nobits := -1, -1
	for i, s := range f.Sections {
		if s.Type == elf.SHT_RELA && s.Info > 0 && int(s.Info) < len(f.Sections) && f.Sections[s.Info].Name == elfscan.EntriesSection {
			rela = i
		}
		if s.Type == elf.SHT_NOBITS && nobits < 0 {
			nobits = i
		}
	}
	if rela < 0 || nobits < 0 {
		t.Fatalf("%s: no relocations of %s (%d) or no SHT_NOBITS section (%d)", src, elfscan.EntriesSection, rela, nobits)
	}
	shoff := binary.LittleEndian.Uint64(orig[0x28:])
	for _, tc := range []struct {
		name string
		info uint32
		want string
	}{
		{"sh_info out of range", 0xfff0, "sh_info"},
		{"sh_info zero", 0, "sh_info"},
		{"sh_info NOBITS", uint32(nobits), "SHT_NOBITS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			binary.LittleEndian.PutUint32(b[shoff+uint64(rela)*64+44:], tc.info)
			p := filepath.Join(t.TempDir(), "bad.o")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, scanErr := elfscan.ScanFile(p)
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
