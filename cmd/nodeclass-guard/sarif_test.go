package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xeipuuv/gojsonschema"

	nodeclassguard "github.com/nodeclass-guard/nodeclass-guard"
)

// sarifSchema is the OASIS SARIF 2.1.0 schema, committed (see its README).
const sarifSchema = "../../testdata/sarif/sarif-schema-2.1.0.json"

// sarifLog is the part of a SARIF log the tests read.
type sarifLog struct {
	Version string `json:"version"`
	Runs    []struct {
		ColumnKind string `json:"columnKind"`
		Tool       struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID   string `json:"id"`
					Help struct {
						Text string `json:"text"`
					} `json:"help"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []sarifResult `json:"results"`
	} `json:"runs"`
}

type sarifResult struct {
	RuleID    string `json:"ruleId"`
	RuleIndex int    `json:"ruleIndex"`
	Level     string `json:"level"`
	Message   struct {
		Text string `json:"text"`
	} `json:"message"`
	Locations []struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI         string `json:"uri"`
				Description *struct {
					Text string `json:"text"`
				} `json:"description"`
			} `json:"artifactLocation"`
			Region struct {
				StartLine   int `json:"startLine"`
				StartColumn int `json:"startColumn"`
			} `json:"region"`
		} `json:"physicalLocation"`
	} `json:"locations"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// schemaErrors validates out against the SARIF 2.1.0 schema.
func schemaErrors(t *testing.T, out string) []string {
	t.Helper()
	abs, err := filepath.Abs(sarifSchema)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gojsonschema.Validate(gojsonschema.NewReferenceLoader("file://"+filepath.ToSlash(abs)), gojsonschema.NewStringLoader(out))
	if err != nil {
		t.Fatalf("validating: %v", err)
	}
	var errs []string
	for _, e := range res.Errors() {
		errs = append(errs, e.String())
	}
	return errs
}

// validateSARIF checks out against the SARIF 2.1.0 schema and decodes it.
func validateSARIF(t *testing.T, out string) sarifLog {
	t.Helper()
	if errs := schemaErrors(t, out); len(errs) > 0 {
		t.Fatalf("SARIF schema:\n%s", strings.Join(errs, "\n"))
	}
	var log sarifLog
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "nodeclass-guard" || log.Runs[0].ColumnKind != "unicodeCodePoints" {
		t.Fatalf("SARIF log header: %+v", log)
	}
	return log
}

// lineCol returns where marker first occurs in file: the expected
// positions are read off the fixture itself.
func lineCol(t *testing.T, text, marker string) (int, int) {
	t.Helper()
	off := strings.Index(text, marker)
	if off < 0 || strings.Count(text, marker) != 1 {
		t.Fatalf("%q is not in the fixture exactly once", marker)
	}
	off += len(marker) - len(strings.TrimLeft(marker, " "))
	before := text[:off]
	return strings.Count(before, "\n") + 1, utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
}

// TestCheckPositions: a denied class among other documents reports the
// line and column of spec.role in the text, JSON and SARIF reports, for
// multi-document YAML, a JSON array, a List in YAML and in JSON, and stdin.
func TestCheckPositions(t *testing.T) {
	for _, tc := range []struct {
		file, marker, source string
		stdin                bool
	}{
		{file: "testdata/positions/multi.yaml", marker: "    role: AdminNodeRole", source: "testdata/positions/multi.yaml#3"},
		{file: "testdata/positions/array.json", marker: "\"role\": \"AdminNodeRole\"}\n", source: "testdata/positions/array.json#1/2"},
		{file: "testdata/positions/list.yaml", marker: "role: AdminNodeRole", source: "testdata/positions/list.yaml#1/items/2"},
		{file: "testdata/positions/list.json", marker: `"role": "AdminNodeRole"`, source: "testdata/positions/list.json#1/items/1"},
		{file: "testdata/positions/multi.yaml", marker: "    role: AdminNodeRole", source: "<stdin>#3", stdin: true},
	} {
		name := filepath.Base(tc.file)
		if tc.stdin {
			name = "stdin"
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			line, col := lineCol(t, string(data), tc.marker)
			path, stdin, file := tc.file, "", tc.file
			if tc.stdin {
				path, stdin, file = "-", string(data), "<stdin>"
			}
			at := fmt.Sprintf("%s:%d:%d", file, line, col)

			text := runCmd(t, stdin, checkArgs(iamArgs(ctlKarpenter), path)...)
			if text.code != 1 || !strings.Contains(text.stdout, "      denied   "+at+": spec.role: [PassRoleDenied] ") {
				t.Errorf("text (exit %d) has no denial at %s:\n%s", text.code, at, text.stdout)
			}

			js := runCmd(t, stdin, checkArgs(append(iamArgs(ctlKarpenter), "-o", "json"), path)...)
			found := false
			for _, r := range parseReport(t, js.stdout).Results {
				if r.Source != tc.source {
					if len(r.Denials) != 0 {
						t.Errorf("%s denied too: %+v", r.Source, r.Denials)
					}
					continue
				}
				if r.File != file || len(r.Denials) != 1 {
					t.Fatalf("%s: file %q, denials %+v", r.Source, r.File, r.Denials)
				}
				d := r.Denials[0]
				found = d.Code == "PassRoleDenied" && d.Line == line && d.Column == col && d.Fix != nil
				if !found {
					t.Errorf("JSON denial %s at %d:%d (fix %v), want PassRoleDenied at %s", d.Code, d.Line, d.Column, d.Fix != nil, at)
				}
			}
			if !found {
				t.Errorf("no result %s in\n%s", tc.source, js.stdout)
			}

			sr := runCmd(t, stdin, checkArgs(append(iamArgs(ctlKarpenter), "-o", "sarif"), path)...)
			if sr.code != 1 {
				t.Errorf("sarif: exit %d, stderr %s", sr.code, sr.stderr)
			}
			log := validateSARIF(t, sr.stdout)
			results := log.Runs[0].Results
			if len(results) != 1 {
				t.Fatalf("SARIF results %+v, want one", results)
			}
			res := results[0]
			loc := res.Locations[0].PhysicalLocation
			if res.RuleID != "PassRoleDenied" || res.Level != "error" || loc.Region.StartLine != line || loc.Region.StartColumn != col {
				t.Errorf("SARIF result %s %s at %d:%d, want PassRoleDenied error at %s", res.RuleID, res.Level, loc.Region.StartLine, loc.Region.StartColumn, at)
			}
			if tc.stdin {
				if loc.ArtifactLocation.URI != "" || loc.ArtifactLocation.Description == nil {
					t.Errorf("stdin's artifact location %+v: want a description, no URI", loc.ArtifactLocation)
				}
			} else if loc.ArtifactLocation.URI != tc.file {
				t.Errorf("artifact URI %q, want %q", loc.ArtifactLocation.URI, tc.file)
			}
			if rules := log.Runs[0].Tool.Driver.Rules; res.RuleIndex < 0 || res.RuleIndex >= len(rules) || rules[res.RuleIndex].ID != res.RuleID {
				t.Errorf("ruleIndex %d does not point at rule %s", res.RuleIndex, res.RuleID)
			}
			if !strings.HasPrefix(res.Message.Text, "spec.role: [PassRoleDenied] ") || len(res.Properties["fix"]) == 0 {
				t.Errorf("SARIF message %q, properties %s", res.Message.Text, res.Properties)
			}
		})
	}
}

// TestCheckSARIF: every code of the README's table is a rule with its
// help text and level; denials are errors, warnings warnings; a fix rides
// in the result's properties; the log validates against the schema.
func TestCheckSARIF(t *testing.T) {
	res := runCmd(t, "", checkArgs(append(iamArgs(ctlLimited), "-o", "sarif"), "testdata/codes", "testdata/mixed", "testdata/bad")...)
	if res.code != 1 {
		t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
	}
	log := validateSARIF(t, res.stdout)
	run := log.Runs[0]
	rules := map[string]int{}
	for i, r := range run.Tool.Driver.Rules {
		rules[r.ID] = i
	}
	for _, c := range nodeclassguard.ReasonCodes() {
		i, ok := rules[c.Code]
		if !ok {
			t.Errorf("no rule %s", c.Code)
			continue
		}
		r := run.Tool.Driver.Rules[i]
		wantLevel := "warning"
		if c.Kind == "deny" {
			wantLevel = "error"
		}
		if !strings.HasPrefix(r.Help.Text, c.Kind+": ") || !strings.Contains(r.Help.Text, strings.ReplaceAll(c.When, "`", "")) || r.DefaultConfiguration.Level != wantLevel {
			t.Errorf("rule %s: help %q, level %s; want the README's %q (%s)", c.Code, r.Help.Text, r.DefaultConfiguration.Level, c.When, c.Kind)
		}
	}
	var jr report
	js := runCmd(t, "", checkArgs(append(iamArgs(ctlLimited), "-o", "json"), "testdata/codes", "testdata/mixed", "testdata/bad")...)
	jr = parseReport(t, js.stdout)
	var want []string
	for _, r := range jr.Results {
		for _, d := range r.Denials {
			want = append(want, fmt.Sprintf("error %s %s:%d:%d %v", d.Code, r.File, d.Line, d.Column, d.Fix != nil))
		}
		for _, w := range r.Warnings {
			want = append(want, fmt.Sprintf("warning %s %s:%d:%d false", w.Code, r.File, w.Line, w.Column))
		}
	}
	var got []string
	for _, r := range run.Results {
		loc := r.Locations[0].PhysicalLocation
		got = append(got, fmt.Sprintf("%s %s %s:%d:%d %v", r.Level, r.RuleID, loc.ArtifactLocation.URI, loc.Region.StartLine, loc.Region.StartColumn, len(r.Properties["fix"]) > 0))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("SARIF results\n%s\nwant (from the JSON report)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The validator does reject what the schema forbids.
	for _, bad := range [][2]string{{`"level": "error"`, `"level": "fatal"`}, {`"startLine": `, `"startLine": -`}, {`"version": "2.1.0"`, `"version": "2.0"`}} {
		if !strings.Contains(res.stdout, bad[0]) {
			t.Fatalf("no %s in the log", bad[0])
		}
		if errs := schemaErrors(t, strings.Replace(res.stdout, bad[0], bad[1], 1)); len(errs) == 0 {
			t.Errorf("a log with %s validates", bad[1])
		}
	}
	// An empty report is a valid log too.
	empty := runCmd(t, "kind: Nothing\n", checkArgs([]string{"--offline", "-o", "sarif"}, "-")...)
	if empty.code != 0 || len(validateSARIF(t, empty.stdout).Runs[0].Results) != 0 {
		t.Errorf("empty SARIF: exit %d\n%s", empty.code, empty.stdout)
	}
}
