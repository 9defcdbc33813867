// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"

	"github.com/ftpatch/ftpatch/internal/encode"
)

// checkDirectCallOffset checks --direct-call-offset (set: given on the
// command line) for a command whose --direct is direct: it needs --direct,
// and follows encode's one rule for the offset.
func checkDirectCallOffset(direct, set bool, off int64) error {
	if set && !direct {
		return UsageErrorf("--direct-call-offset needs --direct")
	}
	if !direct {
		return nil
	}
	if _, err := encode.DirectCallOffset(off); err != nil {
		var bad *encode.DirectCallOffsetError
		if errors.As(err, &bad) {
			return UsageErrorf("--direct-call-offset %d: %s", bad.Off, bad.Rule())
		}
		return UsageErrorf("--direct-call-offset: %v", err)
	}
	return nil
}
