// SPDX-License-Identifier: Apache-2.0

package main

// The CI examples (examples/github-actions.yml, examples/gitlab-ci.yml) as
// the acceptance scripts run them: `cisteps YAML ROLE OUT` parses a
// workflow with a YAML parser and writes to OUT a bash script of the steps
// that call ftpatch, as written there, each in its own `set -eo pipefail`
// shell (as GitHub's run steps and GitLab's script lines run). ROLE base
// takes the steps that save the base build's scan (they write
// base-scan.jsonl), ROLE check the others, in the workflow's order. A step
// that fails stops the script, naming the step and its exit status.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
	"gopkg.in/yaml.v3"
)

// ciStep is a shell step of a workflow.
type ciStep struct {
	name, run string
}

// callsFtpatch reports whether a step runs an ftpatch command.
func (s ciStep) callsFtpatch() bool {
	for _, l := range strings.Split(s.run, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "ftpatch ") {
			return true
		}
	}
	return false
}

// githubSteps are the run steps of every job of a GitHub Actions workflow.
func githubSteps(doc map[string]any) ([]ciStep, error) {
	jobs, ok := doc["jobs"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no jobs")
	}
	var steps []ciStep
	for _, name := range sortedKeys(jobs) {
		job, _ := jobs[name].(map[string]any)
		list, _ := job["steps"].([]any)
		for i, st := range list {
			m, _ := st.(map[string]any)
			if run, ok := m["run"].(string); ok {
				n, _ := m["name"].(string)
				steps = append(steps, ciStep{fmt.Sprintf("%s/%d %s", name, i, n), run})
			}
		}
	}
	return steps, nil
}

// gitlabSteps are the script lines of every job of a GitLab CI file (a
// job is a top-level map with a script), jobs in the file's order.
func gitlabSteps(node *yaml.Node) ([]ciStep, error) {
	if len(node.Content) == 0 || node.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a mapping")
	}
	top := node.Content[0]
	var steps []ciStep
	for k := 0; k+1 < len(top.Content); k += 2 {
		name := top.Content[k].Value
		var job map[string]any
		if err := top.Content[k+1].Decode(&job); err != nil {
			continue // stages:, variables: ...
		}
		script, _ := job["script"].([]any)
		for i, line := range script {
			if s, ok := line.(string); ok {
				steps = append(steps, ciStep{fmt.Sprintf("%s/%d", name, i), s})
			}
		}
	}
	return steps, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ciSteps is the cisteps command.
func ciSteps(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 || (args[1] != "base" && args[1] != "check") {
		ts.Fatalf("usage: cisteps YAML base|check OUT")
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(ts.ReadFile(args[0])), &node); err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	var doc map[string]any
	if err := node.Decode(&doc); err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	var steps []ciStep
	var err error
	if _, ok := doc["jobs"]; ok {
		steps, err = githubSteps(doc)
	} else {
		steps, err = gitlabSteps(&node)
	}
	if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	var b strings.Builder
	n := 0
	for _, s := range steps {
		if !s.callsFtpatch() || strings.Contains(s.run, ">base-scan.jsonl") != (args[1] == "base") {
			continue
		}
		n++
		fmt.Fprintf(&b, "# %s\n(\nset -eo pipefail\n%s\n) || { rc=$?; echo \"step %s: exit $rc\" >&2; exit $rc; }\n", s.name, strings.TrimRight(s.run, "\n"), s.name)
	}
	if n == 0 {
		ts.Fatalf("%s: no %s step calls ftpatch", args[0], args[1])
	}
	ts.Logf("%s: %d %s steps", args[0], n, args[1])
	if err := writeFile(ts.MkAbs(args[2]), b.String()); err != nil {
		ts.Fatalf("%v", err)
	}
}
