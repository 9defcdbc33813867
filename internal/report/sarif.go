// SPDX-License-Identifier: Apache-2.0

package report

// SARIF 2.1.0 (OASIS; the schema is testdata/schema/sarif-schema-2.1.0.json),
// as GitHub code scanning reads it: one run, the tool's rules listed once
// (Rules), then one result per problem, failed site or regression, written
// as they come, then the invocation with the inputs that could not be
// read. Only those notifications are held until the end.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/ftpatch/ftpatch/internal/render"
)

// SARIFSchema is the $schema the log names: OASIS's published schema.
const SARIFSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// sarifToolURI is where the tool is described.
const sarifToolURI = "https://github.com/ftpatch/ftpatch"

// SARIFResult is one result: a finding at a site.
type SARIFResult struct {
	Rule    string // a Rules id
	Ignored bool   // accepted by the run (--ignore): level note, not error
	Message string // one line, naming the file, function and address
	File    string // the input, as given or reached from a folder
	Func    string // "" when no function covers the site
	Section string
	Address uint64 // the entry; in an object, its offset in Section
	Rel     bool   // Address is an offset in Section
	Whole   bool   // about the whole file (an input missing): no function, no address
}

// SARIF writes one SARIF log; see NewSARIF. Methods after an error do
// nothing; Close returns the error.
type SARIF struct {
	w       *bufio.Writer
	results int
	notes   []sarifNotification
	err     error
}

// NewSARIF starts a log on w for a run of ftpatch version.
func NewSARIF(w io.Writer, version string) *SARIF {
	s := &SARIF{w: bufio.NewWriterSize(w, 64<<10)}
	driver := sarifDriver{Name: "ftpatch", Version: version, InformationURI: sarifToolURI, Rules: make([]sarifRule, len(Rules))}
	for i, r := range Rules {
		driver.Rules[i] = sarifRule{ID: r.ID, ShortDescription: sarifText{r.Short}, FullDescription: sarifText{r.Short},
			Help: sarifText{r.Help}, DefaultConfiguration: sarifConfig{Level: "error"}}
	}
	tool, err := json.Marshal(sarifTool{driver})
	if err != nil {
		s.err = err
		return s
	}
	s.write(`{"$schema":"` + SARIFSchema + `","version":"2.1.0","runs":[{"tool":`)
	s.write(string(tool))
	s.write(`,"results":[`)
	return s
}

func (s *SARIF) write(str string) {
	if s.err == nil {
		_, s.err = s.w.WriteString(str)
	}
}

// Result adds a result.
func (s *SARIF) Result(r SARIFResult) {
	if s.err != nil {
		return
	}
	b, err := json.Marshal(sarifResultOf(r))
	if err != nil {
		s.err = err
		return
	}
	if s.results > 0 {
		s.write(",")
	}
	s.write("\n")
	s.write(string(b))
	s.results++
}

// InputError records an input that could not be checked, for the
// invocation's notifications.
func (s *SARIF) InputError(file, message string) {
	s.notes = append(s.notes, sarifNotification{Level: "error", Message: sarifText{message},
		Locations: []sarifLocation{{PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: fileURI(file)}}}}})
}

// Close ends the log with the invocation (successful when the run could
// check every input) and flushes it; it returns the first error met.
func (s *SARIF) Close() error {
	inv, err := json.Marshal([]sarifInvocation{{ExecutionSuccessful: len(s.notes) == 0, Notifications: s.notes}})
	if err != nil && s.err == nil {
		s.err = err
	}
	s.write("\n],\"invocations\":")
	s.write(string(inv))
	s.write("}]}\n")
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

func sarifResultOf(r SARIFResult) sarifResult {
	level := "error"
	if r.Ignored {
		level = "note"
	}
	fn := r.Func
	if fn == "" {
		fn = "?"
	}
	addr := &sarifAddress{Kind: "function", Name: fn, FullyQualifiedName: render.Place(r.Rel, r.Section, r.Address)}
	if r.Rel {
		off := r.Address
		addr.RelativeAddress = &off
	} else {
		a := r.Address
		addr.AbsoluteAddress = &a
	}
	if r.Whole {
		return sarifResult{RuleID: r.Rule, RuleIndex: ruleIndex(r.Rule), Level: level, Message: sarifText{r.Message},
			Locations:           []sarifLocation{{PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: fileURI(r.File)}}}},
			PartialFingerprints: map[string]string{"ftpatchSite/v1": r.Rule + "|" + r.File}}
	}
	return sarifResult{
		RuleID: r.Rule, RuleIndex: ruleIndex(r.Rule), Level: level, Message: sarifText{r.Message},
		Locations: []sarifLocation{{
			PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: fileURI(r.File)}, Address: addr},
			LogicalLocations: []sarifLogical{{Name: fn, Kind: "function", FullyQualifiedName: filepath.Base(r.File) + "!" + r.Section + "!" + fn}},
		}},
		// Stable across builds (no address): code scanning matches alerts
		// of one function from run to run.
		PartialFingerprints: map[string]string{"ftpatchSite/v1": strings.Join([]string{r.Rule, r.File, r.Section, fn}, "|")},
	}
}

// fileURI is path as a URI reference: relative paths stay relative (to
// the folder the run started in, as code scanning expects them relative
// to the checkout), absolute ones become file: URIs.
func fileURI(path string) string {
	p := filepath.ToSlash(path)
	if filepath.IsAbs(path) {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: p}).String()
}

// The SARIF objects ftpatch writes, with the properties it uses.
type (
	sarifText struct {
		Text string `json:"text"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version"`
		InformationURI string      `json:"informationUri"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string      `json:"id"`
		ShortDescription     sarifText   `json:"shortDescription"`
		FullDescription      sarifText   `json:"fullDescription"`
		Help                 sarifText   `json:"help"`
		DefaultConfiguration sarifConfig `json:"defaultConfiguration"`
	}
	sarifConfig struct {
		Level string `json:"level"`
	}
	sarifResult struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             sarifText         `json:"message"`
		Locations           []sarifLocation   `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
	}
	sarifLocation struct {
		PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
		LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Address          *sarifAddress `json:"address,omitempty"`
	}
	sarifArtifact struct {
		URI string `json:"uri"`
	}
	sarifAddress struct {
		AbsoluteAddress    *uint64 `json:"absoluteAddress,omitempty"`
		RelativeAddress    *uint64 `json:"relativeAddress,omitempty"`
		Kind               string  `json:"kind"`
		Name               string  `json:"name"`
		FullyQualifiedName string  `json:"fullyQualifiedName"`
	}
	sarifLogical struct {
		Name               string `json:"name"`
		Kind               string `json:"kind"`
		FullyQualifiedName string `json:"fullyQualifiedName"`
	}
	sarifInvocation struct {
		ExecutionSuccessful bool                `json:"executionSuccessful"`
		Notifications       []sarifNotification `json:"toolExecutionNotifications,omitempty"`
	}
	sarifNotification struct {
		Level     string          `json:"level"`
		Message   sarifText       `json:"message"`
		Locations []sarifLocation `json:"locations"`
	}
)
