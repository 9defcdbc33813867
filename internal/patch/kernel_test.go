// SPDX-License-Identifier: Apache-2.0

package patch_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/patch"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

// renamed writes a copy of the fixture with symbol names replaced in its
// string tables (each by a name of the same length).
func renamed(t *testing.T, fixture string, names map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Fixtures(t, fixture)[0])
	if err != nil {
		t.Fatal(err)
	}
	for from, to := range names {
		if len(from) != len(to) || !bytes.Contains(b, []byte("\x00"+from+"\x00")) {
			t.Fatalf("cannot rename %s to %s", from, to)
		}
		b = bytes.ReplaceAll(b, []byte("\x00"+from+"\x00"), []byte("\x00"+to+"\x00"))
	}
	p := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A relocatable Linux image built without KASLR runs at its link address:
// enable writes an absolute ops there without --allow-absolute. With KASLR
// (a symbol only CONFIG_RANDOMIZE_BASE brings) it is refused, saying why;
// so is the kernel-like fixture, which is no Linux image (no linux_banner).
func TestAbsoluteOpsInLinuxImage(t *testing.T) {
	const fx = "gcc-callops53-bti-kimage.elf" // relocatable (ET_DYN), no problem site
	req := patch.Request{Op: patch.OpEnable, InitToo: true, Ops: &patch.Value{Sym: "ops"}}
	for _, tc := range []struct {
		name    string
		names   map[string]string
		refused string // "" when accepted
	}{
		{"kernel-like fixture", nil, "loaded elsewhere; patch the objects"},
		{"Linux without KASLR", map[string]string{"ops_callback": "linux_banner"}, ""},
		{"Linux with KASLR", map[string]string{"ops_callback": "linux_banner", "trace_hits": "kaslr_init"}, "built with KASLR, CONFIG_RANDOMIZE_BASE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testutil.Fixtures(t, fx)[0]
			if tc.names != nil {
				path = renamed(t, fx, tc.names)
			}
			in, err := patch.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			c, err := patch.Plan(in, req)
			switch {
			case tc.refused == "" && (err != nil || c.Empty()):
				t.Fatalf("Plan: %v (empty %v), want the sites enabled", err, c != nil && c.Empty())
			case tc.refused != "" && (!errors.Is(err, patch.ErrAbsolute) || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("Plan: %v, want ErrAbsolute saying %q", err, tc.refused)
			}
		})
	}
}
