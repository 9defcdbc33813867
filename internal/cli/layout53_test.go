// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

// scan --check finds no problem in any 5,3 fixture (GCC, Clang, clang-16
// kCFI; objects, modules, executables, kernel-like images), while the kCFI
// 4,2 builds fail it with advice naming kCFI and 5,3, and the image whose
// entries a 4,2 sorttable zeroed fails it naming that.
func TestScanCheck53(t *testing.T) {
	files := testutil.Fixtures(t, "*callops53*")
	if len(files) < 20 {
		t.Fatalf("%d 5,3 fixtures", len(files))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "-zeroed.elf") {
			out, errs, code := ftp(t, "scan", "--check", f)
			if code != 1 || !strings.Contains(out, "zeroed-entries: ") || !strings.Contains(out, "before_func = 8") {
				t.Errorf("scan --check %s: exit %d, want 1 with zeroed-entries\n%s%s", filepath.Base(f), code, out, errs)
			}
			continue
		}
		if out, errs, code := ftp(t, "scan", "--check", f); code != 0 || !strings.Contains(out, "call-ops-5-3") {
			t.Errorf("scan --check %s: exit %d\n%s%s", filepath.Base(f), code, out, errs)
		}
	}
	for _, f := range testutil.Fixtures(t, "clang16-kcfi-callops-bti-*") {
		out, errs, code := ftp(t, "scan", "--check", f)
		if code != 1 || !strings.Contains(out, "kCFI") || !strings.Contains(out, "-fpatchable-function-entry=5,3") {
			t.Errorf("scan --check %s: exit %d, want 1 with the kCFI advice\n%s%s", filepath.Base(f), code, out, errs)
		}
	}
}
