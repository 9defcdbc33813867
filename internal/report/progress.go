// SPDX-License-Identifier: Apache-2.0

package report

// Progress bars: a run over many inputs, verify over many sites. cli
// decides when a bar is shown (a terminal, enough work); this is how it
// looks.

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is a bar counting up to n items on a terminal, cleared when
// finished. A nil *Progress draws nothing, so callers need not check.
type Progress struct{ bar *progressbar.ProgressBar }

// NewProgress starts a bar on w for n items, labelled what (the command).
func NewProgress(w io.Writer, n int, what string) *Progress {
	return &Progress{progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

// Add moves the bar n items on; safe for concurrent use.
func (p *Progress) Add(n int) {
	if p != nil {
		p.bar.Add(n)
	}
}

// Clear takes the bar off the line, for a message; the next Add draws it
// again.
func (p *Progress) Clear() {
	if p != nil {
		p.bar.Clear()
	}
}

// Finish ends the bar and clears it.
func (p *Progress) Finish() {
	if p != nil {
		p.bar.Finish()
	}
}
