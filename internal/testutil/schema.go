// SPDX-License-Identifier: Apache-2.0

package testutil

// Validators no one here wrote, for the reports CI systems read: SARIF
// against OASIS's published JSON schema (santhosh-tekuri/jsonschema), JUnit
// XML against the Jenkins JUnit schema (xmllint, libxml2). The schemas are
// in testdata/schema, with where they came from.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	sarifOnce   sync.Once
	sarifSchema *jsonschema.Schema
	sarifErr    error
)

// ValidateSARIF fails t unless data is a SARIF 2.1.0 log that OASIS's
// schema accepts (formats such as uri asserted), and returns it decoded.
func ValidateSARIF(t testing.TB, data []byte) map[string]any {
	t.Helper()
	m, err := SARIFError(t, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// SARIFError is ValidateSARIF's check: nil when data validates.
func SARIFError(t testing.TB, data []byte) (map[string]any, error) {
	t.Helper()
	return CheckSARIF(RepoRoot(t), data)
}

// CheckSARIF validates data against the schema in the repository at root
// (for callers without a testing.TB, such as a testscript command).
func CheckSARIF(root string, data []byte) (map[string]any, error) {
	sarifOnce.Do(func() {
		path := filepath.Join(root, "testdata", "schema", "sarif-schema-2.1.0.json")
		f, err := os.Open(path)
		if err != nil {
			sarifErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			sarifErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if sarifErr = c.AddResource(path, doc); sarifErr == nil {
			sarifSchema, sarifErr = c.Compile(path)
		}
	})
	if sarifErr != nil {
		return nil, fmt.Errorf("SARIF schema: %w", sarifErr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("SARIF output is not JSON: %w", err)
	}
	if err := sarifSchema.Validate(v); err != nil {
		return nil, fmt.Errorf("SARIF output does not validate against sarif-schema-2.1.0.json: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("SARIF output is not an object")
	}
	return m, nil
}

// ValidateJUnit fails t unless the file at path validates against the
// Jenkins JUnit schema with xmllint (which CI installs: see NeedTool).
func ValidateJUnit(t testing.TB, path string) {
	t.Helper()
	if err := JUnitError(t, path); err != nil {
		t.Fatal(err)
	}
}

// JUnitError is ValidateJUnit's check: nil when the file validates.
func JUnitError(t testing.TB, path string) error {
	t.Helper()
	return CheckJUnit(NeedTool(t, "xmllint"), RepoRoot(t), path)
}

// CheckJUnit validates the file at path with xmllint against the schema
// in the repository at root.
func CheckJUnit(xmllint, root, path string) error {
	xsd := filepath.Join(root, "testdata", "schema", "jenkins-junit.xsd")
	out, err := exec.Command(xmllint, "--noout", "--schema", xsd, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("JUnit output does not validate against jenkins-junit.xsd: %v\n%s", err, out)
	}
	return nil
}
