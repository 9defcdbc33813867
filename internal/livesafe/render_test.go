// SPDX-License-Identifier: Apache-2.0

package livesafe_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/livesafe"
	"github.com/ftpatch/ftpatch/internal/report"
)

func init() { livesafe.Render, livesafe.ProblemText = render, report.ProblemText }

func render(t testing.TB, r *livesafe.Report) string {
	t.Helper()
	var text strings.Builder
	if err := report.AgainstText(&text, r); err != nil || text.Len() == 0 {
		t.Fatalf("AgainstText: %v (%d bytes)", err, text.Len())
	}
	var w bytes.Buffer
	if err := report.WriteLine(&w, report.Against(r)); err != nil {
		t.Fatal(err)
	}
	var back report.AgainstReport
	if err := json.Unmarshal(w.Bytes(), &back); err != nil || back.Counts.Problems != r.Counts.Problems {
		t.Fatalf("JSON round trip: %v", err)
	}
	return text.String()
}
