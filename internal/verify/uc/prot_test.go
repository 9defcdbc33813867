// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package uc

import "testing"

// The protections builds without cgo use are unicorn.h's.
func TestProtMatchesHeader(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"NONE", protNone, PROT_NONE}, {"READ", protRead, PROT_READ}, {"WRITE", protWrite, PROT_WRITE},
		{"EXEC", protExec, PROT_EXEC}, {"ALL", protAll, PROT_ALL},
	} {
		if c.got != c.want {
			t.Errorf("PROT_%s: prot.go has %d, unicorn.h %d", c.name, c.got, c.want)
		}
	}
}
