// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failingWriter fails every write, as a full disk or a closed pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// An input's error line that cannot be written is the run's "writing
// output" error (exit 2), not lost behind "1 input failed".
func TestInputErrorLineWriteFails(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.elf")
	if err := os.WriteFile(bad, []byte("\x7fELF not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.elf")
	if err := os.WriteFile(good, []byte("\x7fELF neither"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"show", "--json", bad},
		{"scan", "--json", bad},
		{"scan", "--json", bad, good},
		{"diff", "--json", bad, good},
	} {
		var errb bytes.Buffer
		root := NewRoot(&IO{In: strings.NewReader(""), Out: failingWriter{}, Err: &errb})
		root.SetArgs(args)
		_, err := root.ExecuteC()
		if err == nil || !strings.Contains(err.Error(), "writing output") || exitCode(err) != ExitInput {
			t.Errorf("%v to a failing stdout: %v (exit %d); want writing output, exit %d", args, err, exitCode(err), ExitInput)
		}
	}
}
