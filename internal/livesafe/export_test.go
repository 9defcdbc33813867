// SPDX-License-Identifier: Apache-2.0

package livesafe

import "testing"

// Render renders r as text and as its JSON line, fails t unless both work
// and the JSON reads back, and returns the text. Rendering is package
// report's, which imports this one: render_test.go, an external test file,
// sets Render so that these tests check every report they make renders.
var Render func(t testing.TB, r *Report) string

// ProblemText is report.ProblemText (set by render_test.go as Render is):
// what a problem says, to check it names the defect.
var ProblemText func(p Problem) string
