// SPDX-License-Identifier: Apache-2.0

package report

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// VersionStamp puts "ftpatch" first in every line however the lines are
// cut into writes; encoding/json reads the result back.
func TestVersionStamp(t *testing.T) {
	var in bytes.Buffer
	for i := range 50 {
		WriteLine(&in, map[string]any{"file": strings.Repeat("{x}\n", i%3), "n": i})
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		var out bytes.Buffer
		s := NewVersionStamp(&out, "v1.2.3")
		for p := in.Bytes(); len(p) > 0; {
			n := min(len(p), 1+r.IntN(40))
			if m, err := s.Write(p[:n]); err != nil || m != n {
				t.Fatalf("Write = %d, %v; want %d", m, err, n)
			}
			p = p[n:]
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 50 {
			t.Fatalf("%d lines, want 50", len(lines))
		}
		for i, l := range lines {
			var m map[string]any
			if !strings.HasPrefix(l, `{"ftpatch":"v1.2.3",`) || json.Unmarshal([]byte(l), &m) != nil || m["n"] != float64(i) {
				t.Fatalf("line %d: %s", i, l)
			}
		}
	}
}
