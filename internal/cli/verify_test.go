// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
	"github.com/ftpatch/ftpatch/internal/testutil/pairtest"
)

func verifyIO() (*IO, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &IO{In: strings.NewReader(""), Out: &out, Err: &errb}, &out, &errb
}

// TestVerifyAgainstCompressed: ORIG and FILE may be compressed, as for
// every other command (it once failed with "bad magic number"). A pair of
// init -> enabled, each compressed with the real tool, gives the same
// report as the plain pair.
func TestVerifyAgainstCompressed(t *testing.T) {
	src := testutil.Fixtures(t, "gcc-callops-static.elf")[0]
	dir := t.TempDir()
	init := pairtest.Linked(t, src, "init.elf", elfscan.StateInit, 0, testutil.SymbolAddr(t, src, "ftrace_caller"))
	enabled := pairtest.Linked(t, src, "enabled.elf", elfscan.StateEnabled, testutil.SymbolAddr(t, src, "ops"), testutil.SymbolAddr(t, src, "ftrace_caller"))
	run := func(orig, file string) map[string]any {
		t.Helper()
		io, out, _ := verifyIO()
		if err := runVerify(&VerifyOptions{Files: []string{file}, Against: orig, JSON: true, Jobs: 2, Seed: 1}, io); err != nil {
			t.Fatalf("verify --against %s %s: %v\n%s", orig, file, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["orig"]; ok {
				return m
			}
		}
		t.Fatalf("no --against report in\n%s", out)
		return nil
	}
	plain := run(init, enabled)
	if plain["live_safe"] != true || plain["counts"].(map[string]any)["sites_changed"].(float64) == 0 {
		t.Fatalf("plain pair: %v", plain)
	}
	for _, tool := range []string{"xz", "zstd"} {
		t.Run(tool, func(t *testing.T) {
			bin := testutil.NeedTool(t, tool)
			comp := func(p string) string {
				dst := filepath.Join(dir, filepath.Base(p)+"."+tool)
				b, err := exec.Command(bin, "-c", p).Output()
				if err != nil {
					t.Fatalf("%s -c %s: %v", tool, p, err)
				}
				if err := os.WriteFile(dst, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return dst
			}
			got := run(comp(init), comp(enabled))
			if !reflect.DeepEqual(got["counts"], plain["counts"]) || got["live_safe"] != true {
				t.Fatalf("compressed pair: %v\nplain pair: %v", got["counts"], plain["counts"])
			}
		})
	}
}
