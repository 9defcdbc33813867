// SPDX-License-Identifier: Apache-2.0

//go:build cgo

package verify

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/testutil"
)

var (
	floorOnce sync.Once
	floorBin  string
	floorErr  error
)

// buildFloor compiles scripts/verify-floor.c as scripts/floor.sh does.
func buildFloor(t *testing.T) string {
	cc := testutil.NeedTool(t, "cc")
	pc := testutil.NeedTool(t, "pkg-config")
	floorOnce.Do(func() {
		flags, err := exec.Command(pc, "--cflags", "unicorn").Output()
		if err != nil {
			floorErr = fmt.Errorf("pkg-config --cflags unicorn: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "floor")
		if err != nil {
			floorErr = err
			return
		}
		floorBin = filepath.Join(dir, "verify-floor")
		args := append(strings.Fields(string(flags)), "-O2", "-Wall", "-Werror", "-o", floorBin,
			filepath.Join(testutil.RepoRoot(t), "scripts", "verify-floor.c"), "-ldl", "-lpthread")
		if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			floorErr = fmt.Errorf("cc %q: %w\n%s", args, err, out)
		}
	})
	if floorErr != nil {
		t.Fatal(floorErr)
	}
	return floorBin
}

// runFloor writes img's plan (img loaded from path) and runs the floor on
// it; it returns the floor's output and exit status.
func runFloor(t *testing.T, floor, path string, img *Image) (string, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plan := filepath.Join(t.TempDir(), "plan")
	out, err := os.Create(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFloorPlan(img, Options{}, f, out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	b, err := exec.Command(floor, "-j", "2", plan, path).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(b), 0
	case errors.As(err, &ee):
		return string(b), ee.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

// The floor runs every site verify runs and passes them, in each state;
// with a trampoline that clobbers X19 (one of the registers an enabled
// site must keep) it fails every enabled site, as verify does: its checks
// are verify's.
func TestFloorRunsVerifysRuns(t *testing.T) {
	floor := buildFloor(t)
	exe, _, _ := buildProgram(t)
	sf := mustScan(t, exe)
	for _, st := range []elfscan.State{elfscan.StateNop, elfscan.StateInit, elfscan.StateEnabled} {
		path := exe
		if st != elfscan.StateNop {
			path = patchCopy(t, exe, sf, st, nil)
		}
		for _, clobber := range []bool{false, true} {
			if clobber && st != elfscan.StateEnabled {
				continue
			}
			t.Run(fmt.Sprintf("%s/clobber=%v", st, clobber), func(t *testing.T) {
				img, err := Load(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				if clobber {
					mutPlantTrampoline(t, img, movz(19, 0))
				}
				n := len(sf.Sites)
				out, code := runFloor(t, floor, path, img)
				want, wantCode := fmt.Sprintf("%d sites: %d passed, 0 failed", n, n), 0
				if clobber {
					want, wantCode = fmt.Sprintf("%d sites: 0 passed, %d failed", n, n), 1
				}
				if code != wantCode || !strings.Contains(out, want) {
					t.Errorf("floor: exit %d, %q; want exit %d, %q", code, out, wantCode, want)
				}
				rep, err := Check(img, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if wantFailed := map[bool]int{false: 0, true: n}[clobber]; rep.Failed != wantFailed {
					t.Errorf("verify: %d failed, want %d", rep.Failed, wantFailed)
				}
			})
		}
	}
}
