// SPDX-License-Identifier: Apache-2.0

package main

// docs/json.md as a checker: each `<!-- object: NAME -->` comment names the
// table after it, whose rows are | `field` | type | meaning |. Types:
// string, integer, number, boolean, "X or null", "array of X",
// "map of X", another object's NAME, each optionally prefixed "optional".

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ftpatch/ftpatch/internal/testutil"
)

type field struct {
	typ      string
	optional bool
}

type contract map[string]map[string]field // object -> field -> type

var (
	objectRe = regexp.MustCompile(`^<!-- object: ([a-z]+) -->$`)
	rowRe    = regexp.MustCompile("^\\| `([a-z_]+)` \\| ([^|]+) \\|")
)

func loadContract(path string) (contract, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := contract{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := objectRe.FindStringSubmatch(line); m != nil {
			cur = m[1]
			c[cur] = map[string]field{}
			continue
		}
		if cur == "" {
			continue
		}
		if line == "" && len(c[cur]) > 0 {
			cur = ""
			continue
		}
		if m := rowRe.FindStringSubmatch(line); m != nil {
			t := strings.TrimSpace(m[2])
			f := field{typ: t}
			if rest, ok := strings.CutPrefix(t, "optional "); ok {
				f = field{typ: rest, optional: true}
			}
			c[cur][m[1]] = f
		}
	}
	for name, fields := range c {
		if len(fields) == 0 {
			return nil, fmt.Errorf("%s: object %s has no field rows", path, name)
		}
		for k, f := range fields {
			if err := c.knownType(f.typ); err != nil {
				return nil, fmt.Errorf("%s: %s.%s: %v", path, name, k, err)
			}
		}
	}
	for _, need := range []string{"error", "scan", "show", "verify", "against", "diff", "summaryline", "summary"} {
		if c[need] == nil {
			return nil, fmt.Errorf("%s: no table for object %s", path, need)
		}
	}
	return c, nil
}

func (c contract) knownType(t string) error {
	t = strings.TrimSuffix(t, " or null")
	for _, p := range []string{"array of ", "map of "} {
		if rest, ok := strings.CutPrefix(t, p); ok {
			return c.knownType(rest)
		}
	}
	switch t {
	case "string", "integer", "number", "boolean":
		return nil
	}
	if c[t] == nil {
		return fmt.Errorf("unknown type %q", t)
	}
	return nil
}

// checkLines checks every line of out: an error line, a verify --against
// line (it has "orig"), or the object its "sites"/"total"/"passed" say.
func (c contract) checkLines(out []byte) error {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(out) == 0 {
		return fmt.Errorf("no JSON line")
	}
	for i, line := range lines {
		var obj map[string]any
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			return fmt.Errorf("line %d is not one JSON object: %v", i+1, err)
		}
		if d.More() {
			return fmt.Errorf("line %d holds more than one JSON value", i+1)
		}
		name := c.kindOf(obj)
		if err := c.check(name, obj); err != nil {
			return fmt.Errorf("line %d (%s): %v", i+1, name, err)
		}
	}
	return nil
}

func (c contract) kindOf(obj map[string]any) string {
	switch {
	case obj["summary"] != nil:
		return "summaryline"
	case obj["error"] != nil:
		return "error"
	case obj["regressed"] != nil:
		return "diff"
	case obj["orig"] != nil:
		return "against"
	case obj["total"] != nil:
		return "show"
	case obj["passed"] != nil:
		return "verify"
	}
	return "scan"
}

func (c contract) check(name string, obj map[string]any) error {
	fields := c[name]
	var extra, missing []string
	for k := range obj {
		if _, ok := fields[k]; !ok {
			extra = append(extra, k)
		}
	}
	for k, f := range fields {
		if _, ok := obj[k]; !ok && !f.optional {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra)+len(missing) > 0 {
		return fmt.Errorf("fields not in docs/json.md: %v; documented fields missing: %v", extra, missing)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := c.value(fields[k].typ, obj[k]); err != nil {
			return fmt.Errorf("%s: %v", k, err)
		}
	}
	return nil
}

func (c contract) value(t string, v any) error {
	if base, ok := strings.CutSuffix(t, " or null"); ok {
		if v == nil {
			return nil
		}
		t = base
	}
	if v == nil {
		return fmt.Errorf("null, documented as %s", t)
	}
	if elem, ok := strings.CutPrefix(t, "array of "); ok {
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%T, documented as %s", v, t)
		}
		for i, e := range a {
			if err := c.value(elem, e); err != nil {
				return fmt.Errorf("[%d]: %v", i, err)
			}
		}
		return nil
	}
	if elem, ok := strings.CutPrefix(t, "map of "); ok {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%T, documented as %s", v, t)
		}
		for k, e := range m {
			if err := c.value(elem, e); err != nil {
				return fmt.Errorf("[%q]: %v", k, err)
			}
		}
		return nil
	}
	ok := false
	switch t {
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "number":
		_, ok = v.(json.Number)
	case "integer":
		n, isNum := v.(json.Number)
		_, err := n.Int64()
		ok = isNum && err == nil
	default:
		m, isObj := v.(map[string]any)
		if !isObj {
			return fmt.Errorf("%T, documented as object %s", v, t)
		}
		return c.check(t, m)
	}
	if !ok {
		return fmt.Errorf("%v (%T), documented as %s", v, v, t)
	}
	return nil
}

// The checker itself: it accepts what the tables say and rejects an
// undocumented field, a missing one, and a value of the wrong type.
func TestContractChecker(t *testing.T) {
	c, err := loadContract(filepath.Join(testutil.RepoRoot(t), "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	good := `{"ftpatch":"v1","file":"a.o","error":"file a.o: bad"}` + "\n" +
		`{"ftpatch":"v1","file":"a.o","elf_type":"REL","sites":[],"problems":0}` + "\n"
	if err := c.checkLines([]byte(good)); err != nil {
		t.Errorf("documented lines rejected: %v", err)
	}
	for _, bad := range []string{
		`{"ftpatch":"v1","file":"a.o","elf_type":"REL","sites":[],"problems":0,"extra":1}`,
		`{"ftpatch":"v1","file":"a.o","elf_type":"REL","sites":[]}`,
		`{"ftpatch":"v1","file":"a.o","elf_type":"REL","sites":[],"problems":"0"}`,
		`{"ftpatch":"v1","file":"a.o","elf_type":"REL","sites":null,"problems":0}`,
		`{"ftpatch":"v1","file":"a.o","elf_type":"REL","sites":[{"func":"f"}],"problems":0}`,
		`{"ftpatch":"v1","file":"a.o","sites":1,"passed":1,"failed":0,"by_state":{"nop":"1"},"seconds":0.1,"failures":[],"elf_type":"REL"}`,
		`not json`,
	} {
		if err := c.checkLines([]byte(bad + "\n")); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
