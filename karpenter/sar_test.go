package karpenter

import (
	"slices"
	"testing"
)

// TestSARTable holds the generated table to what the issue measured
// against the reference: CreateFleet is not authorized on network
// interfaces or security groups, RunInstances is; created resources carry
// the request's tags, existing ones their own.
func TestSARTable(t *testing.T) {
	fleet := ResourceTypes("ec2:CreateFleet")
	for _, want := range []string{"fleet", "instance", "volume", "image", "launch-template", "subnet"} {
		if !slices.Contains(fleet, want) {
			t.Errorf("CreateFleet types %v lack %s", fleet, want)
		}
	}
	for _, not := range []string{"network-interface", "security-group"} {
		if slices.Contains(fleet, not) {
			t.Errorf("CreateFleet types %v hold %s", fleet, not)
		}
	}
	run := ResourceTypes("ec2:RunInstances")
	for _, want := range []string{"instance", "volume", "network-interface", "image", "subnet", "security-group", "launch-template"} {
		if !slices.Contains(run, want) {
			t.Errorf("RunInstances types %v lack %s", run, want)
		}
	}
	for _, c := range []struct {
		action, typ, key string
		want             bool
	}{
		{"ec2:RunInstances", "instance", "aws:RequestTag/", true},
		{"ec2:RunInstances", "instance", "aws:ResourceTag/", false},
		{"ec2:RunInstances", "image", "aws:RequestTag/", false},
		{"ec2:RunInstances", "image", "aws:ResourceTag/", true},
		{"ec2:RunInstances", "image", "ec2:Owner", true},
		{"ec2:RunInstances", "launch-template", "aws:ResourceTag/", true},
		{"ec2:RunInstances", "launch-template", "aws:TagKeys", false},
		{"ec2:RunInstances", "volume", "ec2:Encrypted", true},
		{"ec2:RunInstances", "instance", "ec2:Region", true},
		{"ec2:CreateLaunchTemplate", "launch-template", "aws:RequestTag/", true},
		{"ec2:CreateFleet", "subnet", "ec2:Vpc", true},
		{"ec2:CreateTags", "instance", "ec2:CreateAction", true},
	} {
		if got := carries(c.action, c.typ, c.key); got != c.want {
			t.Errorf("%s on %s carries %s = %v, want %v", c.action, c.typ, c.key, got, c.want)
		}
	}
	if SARSource() == "" {
		t.Error("no source")
	}
}
