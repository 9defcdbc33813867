// SPDX-License-Identifier: Apache-2.0

package verify

import (
	"io"

	"github.com/ftpatch/ftpatch/internal/livesafe"
)

// AgainstText and ProblemText are package report's, set by render_test.go:
// package report imports this one, so only an external test file may
// import it.
var (
	AgainstText func(w io.Writer, r *livesafe.Report) error
	ProblemText func(p livesafe.Problem) string
)
