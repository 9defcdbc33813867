// SPDX-License-Identifier: Apache-2.0

package verify_test

import (
	"github.com/ftpatch/ftpatch/internal/report"
	"github.com/ftpatch/ftpatch/internal/verify"
)

func init() { verify.AgainstText, verify.ProblemText = report.AgainstText, report.ProblemText }
