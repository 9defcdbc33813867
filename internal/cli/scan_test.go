package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

func scanRun(t *testing.T, opts ScanOptions) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	if opts.Jobs == 0 {
		opts.Jobs = 2
	}
	err = runScan(&opts, &IO{Out: &out, Err: &errb})
	return out.String(), errb.String(), err
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// The --json keys are a contract scripts rely on (issue 2).
func TestScanJSONContract(t *testing.T) {
	obj := testutil.Fixtures(t, "gcc-callops-bti-obj.o")[0]
	pie := testutil.Fixtures(t, "clang-callops-bti-pie.elf")[0]
	classic := testutil.Fixtures(t, "gcc-classic-static.elf")[0]
	stdout, stderr, err := scanRun(t, ScanOptions{JSON: true, Files: []string{obj, pie, classic}})
	if err != nil || stderr != "" {
		t.Fatalf("err %v, stderr %q", err, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want one per file:\n%s", len(lines), stdout)
	}
	wantFile := []string{"file", "elf_type", "sites", "problems"}
	wantSite := []string{"func", "section", "entry", "call_site", "literal", "layout", "bti", "state", "ops", "target", "problems"}
	for i, tc := range []struct{ path, typ, layout string }{{obj, "REL", "call-ops"}, {pie, "DYN", "call-ops"}, {classic, "EXEC", "classic"}} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range wantFile {
			if _, ok := m[k]; !ok {
				t.Errorf("file object lacks %q: %v", k, keys(m))
			}
		}
		if m["file"] != tc.path || m["elf_type"] != tc.typ {
			t.Errorf("file %v elf_type %v, want %s %s", m["file"], m["elf_type"], tc.path, tc.typ)
		}
		sites, _ := m["sites"].([]any)
		if len(sites) == 0 {
			t.Fatalf("%s: no sites", tc.path)
		}
		problems := 0
		for _, s := range sites {
			s := s.(map[string]any)
			for _, k := range wantSite {
				if _, ok := s[k]; !ok {
					t.Errorf("site lacks %q: %v", k, keys(s))
				}
			}
			if ps, ok := s["problems"].([]any); !ok {
				t.Errorf("problems is %#v, want a list", s["problems"])
			} else {
				problems += len(ps)
			}
			for _, k := range []string{"entry", "call_site"} {
				if v, _ := s[k].(string); !strings.HasPrefix(v, "0x") {
					t.Errorf("%s = %#v, want a 0x string", k, s[k])
				}
			}
			lit := s["literal"]
			if (tc.layout == "classic") != (lit == nil) {
				t.Errorf("%s literal %#v for layout %s", tc.path, lit, tc.layout)
			}
			if s["layout"] != tc.layout || s["state"] != "nop" || s["ops"] != nil || s["target"] != nil {
				t.Errorf("site %v", s)
			}
		}
		if m["problems"] != float64(problems) {
			t.Errorf("problems %v, sites carry %d", m["problems"], problems)
		}
	}
	// Key order is stable: struct order.
	if !strings.HasPrefix(lines[0], `{"file":`) || !strings.Contains(lines[0], `"sites":[{"func":`) {
		t.Errorf("key order: %.80s", lines[0])
	}
}

func TestScanCheck(t *testing.T) {
	clean := testutil.Fixtures(t, "clang-callops-bti-obj.o")[0]
	cold := testutil.Fixtures(t, "gcc-callops-obj.o")[0]
	tests := []struct {
		name     string
		opts     ScanOptions
		findings bool
	}{
		{"clean", ScanOptions{Check: true, Files: []string{clean}}, false},
		{"misaligned", ScanOptions{Check: true, Files: []string{cold}}, true},
		{"misaligned-json", ScanOptions{Check: true, JSON: true, Files: []string{clean, cold}}, true},
		{"misaligned-no-check", ScanOptions{Files: []string{cold}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := scanRun(t, tt.opts)
			if got := errors.Is(err, ErrFindings); got != tt.findings || (err != nil && !got) {
				t.Fatalf("err %v, want findings %v", err, tt.findings)
			}
			if exitCode(err) != map[bool]ExitCode{false: ExitOK, true: ExitFindings}[tt.findings] {
				t.Errorf("exit code %d", exitCode(err))
			}
			if tt.findings && !tt.opts.JSON && !strings.Contains(stdout, "-falign-functions=8") {
				t.Errorf("the fix is not named:\n%s", stdout)
			}
		})
	}
}

func TestScanBadFileContinues(t *testing.T) {
	good := testutil.Fixtures(t, "gcc-classic-obj.o")[0]
	bad := filepath.Join(t.TempDir(), "notelf.o")
	os.WriteFile(bad, []byte("hello, world, not an ELF file"), 0o644)
	missing := filepath.Join(t.TempDir(), "missing.o")
	stdout, stderr, err := scanRun(t, ScanOptions{JSON: true, Check: true, Files: []string{bad, good, missing}})
	if err == nil || errors.Is(err, ErrFindings) || exitCode(err) != ExitInput {
		t.Fatalf("err %v (exit %d), want an input error", err, exitCode(err))
	}
	// --json: each file on its own line, in order, the unreadable ones
	// with an "error" field; text: errors on stderr.
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 3 || stderr != "" {
		t.Fatalf("stdout should hold one line per file, stderr nothing; stdout:\n%s\nstderr: %s", stdout, stderr)
	}
	for i, p := range []string{bad, good, missing} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		if _, hasErr := m["error"]; m["file"] != p || hasErr != (p != good) {
			t.Errorf("line %d = %s, want %s", i, lines[i], p)
		}
	}
	_, stderr, _ = scanRun(t, ScanOptions{Check: true, Files: []string{bad, good, missing}})
	// Each file's line says what is wrong with it.
	for _, want := range [][2]string{{"file " + bad + ": ", "ELF"}, {"file " + missing + ": ", "no such file or directory"}} {
		i := strings.Index(stderr, want[0])
		if i < 0 {
			t.Errorf("stderr does not name %q:\n%s", want[0], stderr)
			continue
		}
		line, _, _ := strings.Cut(stderr[i:], "\n")
		if !strings.Contains(line, want[1]) {
			t.Errorf("stderr line %q does not say %q", line, want[1])
		}
	}
}

func TestScanText(t *testing.T) {
	path := testutil.Fixtures(t, "gcc-callops-bti-pie.elf")[0]
	stdout, _, err := scanRun(t, ScanOptions{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FUNCTION", "fx_add", "call-ops", "bti", path + ": DYN, 14 sites (14 nop), 0 problems"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestScanFlags(t *testing.T) {
	io := &IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	cmd := newScanCmd(io)
	cmd.RunE = func(*cobra.Command, []string) error { return nil }
	cmd.SetArgs([]string{"--json", "--check", "-j", "3", "a.o"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"json": "true", "check": "true", "jobs": "3"} {
		if got := cmd.Flags().Lookup(name).Value.String(); !reflect.DeepEqual(got, want) {
			t.Errorf("--%s = %s, want %s", name, got, want)
		}
	}
	cmd = newScanCmd(io)
	cmd.SetArgs([]string{})
	if err := cmd.Execute(); err == nil || !isArgsError(err) {
		t.Errorf("no FILE: err %v, want a usage error", err)
	}
}

// BenchmarkScanJSONFile is `scan --json FILE` without the process around it.
func BenchmarkScanJSONFile(b *testing.B) {
	path := os.Getenv("FTPATCH_BENCH_FILE")
	if path == "" {
		b.Skip("set FTPATCH_BENCH_FILE (make bench builds build/bench/vmlinux.elf)")
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := runScan(&ScanOptions{JSON: true, Jobs: 2, Files: []string{path}}, &IO{Out: io.Discard, Err: io.Discard}); err != nil {
			b.Fatal(err)
		}
	}
}
