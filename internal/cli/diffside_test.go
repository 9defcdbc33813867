// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"strings"
	"testing"
)

func TestNormalizeKey(t *testing.T) {
	for in, want := range map[string]string{
		"vmlinux": "vmlinux",
		"usr/lib/debug/boot/vmlinux-6.12.117+deb13-cloud-arm64": "vmlinux",
		"lib/modules/6.12.1/kernel/fs/xfs/xfs.ko.xz":            "fs/xfs/xfs.ko",
		"usr/lib/modules/6.12.1/kernel/fs/xfs/xfs.ko.zst":       "fs/xfs/xfs.ko",
		"lib/modules/6.12.1/updates/dkms/x.ko":                  "updates/dkms/x.ko",
		"fs/xfs/xfs.ko":                                         "fs/xfs/xfs.ko",
		"modules-compressed/drv.ko.gz":                          "modules-compressed/drv.ko",
	} {
		if got := normalizeKey(in); got != want {
			t.Errorf("normalizeKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// A saved scan's paths lose the prefix that pairs them with the other
// side's inputs; with nothing to pair with, the folder they share.
func TestAlignSaved(t *testing.T) {
	side := func(keys ...string) *diffSide {
		s := &diffSide{}
		for _, k := range keys {
			s.inputs = append(s.inputs, sideInput{key: k, line: -1})
		}
		return s
	}
	keys := func(s *diffSide) string {
		var k []string
		for _, in := range s.inputs {
			k = append(k, in.key)
		}
		return strings.Join(k, " ")
	}
	for _, tc := range []struct {
		saved, other []string
		want         string
	}{
		// The folder scanned held only modules/: the common folder would
		// take modules/ off too; pairing with the tree keeps it.
		{[]string{"b/kbuild/modules/a.ko", "b/kbuild/modules/b.ko"}, []string{"vmlinux", "modules/a.ko", "modules/b.ko"}, "modules/a.ko modules/b.ko"},
		{[]string{"base/vmlinux", "base/lib/modules/6.1/kernel/d/x.ko.xz"}, []string{"vmlinux", "d/x.ko"}, "vmlinux d/x.ko"},
		{[]string{"old/a/x.ko", "old/a/y.ko"}, nil, "x.ko y.ko"},
		{[]string{"x.ko", "old/y.ko"}, nil, "x.ko old/y.ko"},
	} {
		s := side(tc.saved...)
		var other *diffSide
		if tc.other != nil {
			other = side(tc.other...)
		}
		s.alignSaved(other)
		if got := keys(s); got != tc.want {
			t.Errorf("%v against %v: keys %q, want %q", tc.saved, tc.other, got, tc.want)
		}
	}
}
