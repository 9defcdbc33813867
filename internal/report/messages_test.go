// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ftpatch/ftpatch/internal/safefile"
)

// TestFileWarning checks the line each safefile warning is printed as.
func TestFileWarning(t *testing.T) {
	for _, tc := range []struct {
		w    safefile.Warning
		want string
	}{
		{safefile.Warning{Kind: safefile.WarnHardLinks, Name: "m.ko", Links: 3},
			"ftpatch: warning: file m.ko has 3 hard links: only this name gets the patched file, the other 2 keep the old contents\n"},
		{safefile.Warning{Kind: safefile.WarnFolderSync, Name: "m.ko", Err: errors.New("EIO")},
			"ftpatch: warning: m.ko is written, but the fsync of its folder failed (EIO): a crash now could bring the old file back\n"},
		{safefile.Warning{Kind: safefile.WarnForeignTemp, Name: "d/m.ko", Path: "d/.m.ko.ftpatch-x"},
			"ftpatch: warning: left d/.m.ko.ftpatch-x alone: its name looks like an ftpatch temporary file's, but ftpatch did not make it (an older ftpatch's leftover, or someone's file: remove it yourself if it is not needed)\n"},
		{safefile.Warning{Kind: safefile.WarnRemovedStale, Name: "d/m.ko", Path: "d/.m.ko.ftpatch-y"},
			"ftpatch: warning: removed d/.m.ko.ftpatch-y, a temporary file left by an ftpatch run that was killed\n"},
	} {
		var b bytes.Buffer
		FileWarning(&b, tc.w)
		if b.String() != tc.want {
			t.Errorf("FileWarning(%+v) = %q, want %q", tc.w, b.String(), tc.want)
		}
	}
}
