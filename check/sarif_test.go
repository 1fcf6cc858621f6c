package check

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSARIFLocations(t *testing.T) {
	r := Report{Results: []Result{
		{Source: "a b/c:d.yaml#1", File: "a b/c:d.yaml", Kind: "EC2NodeClass", Name: "x",
			Denials: []Item{{Code: "RoleIsARN", Field: "spec.role", Message: "m", Line: 3, Column: 5}}},
		{Source: "/abs/dir/f.yaml#1", File: "/abs/dir/f.yaml", Kind: "EC2NodeClass", Name: "y",
			Warnings: []Item{{Code: "SomeFutureCode", Field: "spec", Message: "w"}}},
		{Source: "./rel.json#1", File: "./rel.json", Kind: "NodePool", Name: "z",
			Warnings: []Item{{Code: "NodeClassNotFound", Field: "spec.template.spec.nodeClassRef", Message: "n", Line: 1, Column: 2}}},
	}}
	var b bytes.Buffer
	if err := r.WriteSARIF(&b, Tool{Name: "nodeclass-guard", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Version string `json:"version"`
					Rules   []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region map[string]int `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	want := []struct {
		uri    string
		region map[string]int
	}{
		{"a%20b/c:d.yaml", map[string]int{"startLine": 3, "startColumn": 5}},
		{"file:///abs/dir/f.yaml", map[string]int{}},
		{"rel.json", map[string]int{"startLine": 1, "startColumn": 2}},
	}
	if run.Tool.Driver.Version != "v1" || len(run.Results) != len(want) {
		t.Fatalf("driver version %q, %d results", run.Tool.Driver.Version, len(run.Results))
	}
	for i, res := range run.Results {
		loc := res.Locations[0].PhysicalLocation
		delete(loc.Region, "byteOffset")
		delete(loc.Region, "charOffset")
		if loc.ArtifactLocation.URI != want[i].uri || len(loc.Region) != len(want[i].region) {
			t.Errorf("result %d: uri %q region %v, want %q %v", i, loc.ArtifactLocation.URI, loc.Region, want[i].uri, want[i].region)
		}
		for k, v := range want[i].region {
			if loc.Region[k] != v {
				t.Errorf("result %d: %s %d, want %d", i, k, loc.Region[k], v)
			}
		}
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %d: ruleIndex %d is %s, not %s", i, res.RuleIndex, run.Tool.Driver.Rules[res.RuleIndex].ID, res.RuleID)
		}
	}
	// A code the README does not list (yet) still gets its rule.
	if last := run.Tool.Driver.Rules[len(run.Tool.Driver.Rules)-1]; last.ID != "SomeFutureCode" {
		t.Errorf("last rule %s, want SomeFutureCode", last.ID)
	}
}
