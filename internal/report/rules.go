// SPDX-License-Identifier: Apache-2.0

package report

import (
	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/sitediff"
)

// Rule is one kind of finding ftpatch reports in SARIF and JUnit: a scan
// problem code, a verify failure, a refused patch or a regression that
// diff finds. Its ID is what scripts match on (the problem codes of scan
// among them).
type Rule struct {
	ID    string
	Short string // what it is, one sentence
	Help  string // what to do about it
}

// The rule ids that are not problem codes.
const (
	RuleSiteFailed   = "site-failed"             // verify: a site misbehaved on the CPU
	RuleNotLiveSafe  = "not-live-safe"           // verify --against: a change running code may not take
	RuleRefused      = "refused-site"            // init, enable, disable refused a site
	RuleLostSite     = sitediff.CodeLostSite     // diff: a function lost its patch site
	RuleLayoutChange = sitediff.CodeLayoutChange // diff: a site lost its literal (call-ops -> classic)
	RuleRemovedInput = "removed-input"           // diff: an input of OLD is not in NEW
)

// Rules lists every rule, in the order SARIF's tool.driver.rules has them:
// the problem codes (elfscan.Codes' order), then the others.
var Rules = []Rule{
	{string(elfscan.CodeMisalignedLiteral), "The 8-byte literal before the entry is not 8-byte aligned, so the trampoline cannot find it and it cannot be written atomically.", elfscan.MisalignedHelp},
	{string(elfscan.CodeUnexpectedInsn), "The site's words are not NOP, MOV X9,X30 or BL where they should be (state unknown), or an object has a relocation inside the site.",
		"Find what wrote the words (ftpatch show --func NAME FILE disassembles them); patch commands refuse such a site."},
	{string(elfscan.CodeDuplicateEntry), "The same site appears more than once in the entries table.",
		"Fix the link (a linker script keeping __patchable_function_entries twice, or objects linked twice); ftrace would make two records for one function."},
	{string(elfscan.CodeOutsideText), "An entry points into no section, into a non-executable one, or its words run past the end of the section.",
		"Check the linker script's __start_mcount_loc/__stop_mcount_loc range and that the entries table is this build's."},
	{string(elfscan.CodeNoFunction), "No function symbol covers the entry.", elfscan.NoFunctionHelp},
	{string(elfscan.CodeZeroedEntries), "The linked file's entries table holds only zeros, so no patch site can be found (the records were zeroed at build time).",
		"With -fpatchable-function-entry=5,3, build with a sorttable that allows 12 bytes before a function (patch 0001 of ftpatch's linux/ series), or use 4,2; the finding's text names the likely cause."},
	{RuleSiteFailed, "The site does not behave as its state requires when run on Unicorn's arm64 CPU.",
		"Read what was expected and what the CPU did, and the site's words; ftpatch show --func NAME FILE disassembles them."},
	{RuleNotLiveSafe, "A change from the original file is not one a running kernel may take (or a difference outside the patch sites).",
		"Patch a running kernel only with live-safe changes: init before the kernel runs, then enable and disable."},
	{RuleRefused, "The patch command refused the site and wrote nothing.", "The message says why and what to do; fix the request or the site and run the command again."},
	{RuleLostSite, "A function that had a patch site in the old build has none in the new one: it can no longer be traced.",
		"Check how the function is now compiled (notrace, a flag that drops -fpatchable-function-entry, inlining)."},
	{RuleLayoutChange, "The site lost its ops literal: call-ops (4,2 or 5,3) in the old build, classic (2) in the new one.",
		"Build with -fpatchable-function-entry=4,2 (or 5,3) again, as CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS does."},
	{RuleRemovedInput, "An input of the old build is not in the new one: its functions can no longer be traced.",
		"If the file was dropped on purpose, compare without it; else find why the build no longer makes it."},
}

// ruleIndex is id's index in Rules, or -1.
func ruleIndex(id string) int {
	for i, r := range Rules {
		if r.ID == id {
			return i
		}
	}
	return -1
}
