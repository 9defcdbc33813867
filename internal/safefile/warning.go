// SPDX-License-Identifier: Apache-2.0

package safefile

// WarningKind says what a Warning is about.
type WarningKind int

// What safefile warns about: none stops the write.
const (
	// WarnHardLinks: the target has Links names; only this one gets the
	// new file, the others keep the old contents.
	WarnHardLinks WarningKind = iota + 1
	// WarnFolderSync: the target is written, but the fsync of its folder
	// failed (Err): a crash could bring the old file back.
	WarnFolderSync
	// WarnForeignTemp: Path, beside the target, is named like one of
	// ftpatch's temporary files but ftpatch did not make it: left alone.
	WarnForeignTemp
	// WarnRemovedStale: Path, a temporary file a killed run left beside
	// the target, was removed.
	WarnRemovedStale
)

// Warning is something a write met and went on from. Name is the target
// as the user gave it; the other fields are per Kind.
type Warning struct {
	Kind  WarningKind
	Name  string
	Path  string // WarnForeignTemp, WarnRemovedStale
	Links uint64 // WarnHardLinks
	Err   error  // WarnFolderSync
}

// warn hands w to the Warn callback, if any.
func (t *Target) warn(w Warning) {
	if t.opt.Warn != nil {
		w.Name = t.Name
		t.opt.Warn(w)
	}
}
