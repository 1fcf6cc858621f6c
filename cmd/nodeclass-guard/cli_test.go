package main

import (
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// TestLegacyFlags: the single-dash spellings of Go's flag package, which
// earlier builds took (and scripts and deployments still write), give the
// same run as pflag's --flags; shorthands stay shorthands.
func TestLegacyFlags(t *testing.T) {
	modern := runCmd(t, "", "check", "--iam-snapshot", snapshotFile, "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json", "testdata/bad")
	if modern.code != 1 {
		t.Fatalf("--flags: exit %d\n%s", modern.code, modern.stderr)
	}
	for _, args := range [][]string{
		{"check", "-iam-snapshot", snapshotFile, "-controller-role", ctlKarpenter, "-cluster-name", "demo", "-region", "us-west-2", "-o", "json", "testdata/bad"},
		{"check", "-iam-snapshot=" + snapshotFile, "-controller-role=" + ctlKarpenter, "-cluster-name=demo", "-region=us-west-2", "-o=json", "testdata/bad"},
		{"check", "--iam-snapshot=" + snapshotFile, "--controller-role", ctlKarpenter, "-cluster-name", "demo", "--region=us-west-2", "--output", "json", "testdata/bad"},
	} {
		res := runCmd(t, "", args...)
		if res.code != modern.code || res.stdout != modern.stdout {
			t.Errorf("%q: exit %d, want %d; stdout differs: %v\n%s", args, res.code, modern.code, res.stdout != modern.stdout, res.stderr)
		}
	}
	// A bool, and a value that looks like a flag after a flag that takes one.
	if res := runCmd(t, "", "check", "-offline", "-o", "json", "testdata/offline"); res.code != 1 || !strings.Contains(res.stdout, "RoleIsARN") {
		t.Errorf("-offline: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := runCmd(t, "", "check", "-offline=true", "-o", "text", "testdata/good"); res.code != 0 {
		t.Errorf("-offline=true: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// After "--" nothing is a flag.
	if res := runCmd(t, "", "check", "--offline", "--", "-offline"); res.code != 2 || !strings.Contains(res.stderr, "-offline") {
		t.Errorf("check --offline -- -offline: exit %d, stderr %q; want 2 naming the path -offline", res.code, res.stderr)
	}
	// serve's flags too: an unknown one is refused before anything starts.
	if res := runCmd(t, "", "serve", "-audit-interval=-1s"); res.code != 2 || !strings.Contains(res.stderr, "--audit-interval") {
		t.Errorf("serve -audit-interval=-1s: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestHelpAndCompletion: generated help with --flags, and shell
// completion scripts.
func TestHelpAndCompletion(t *testing.T) {
	for _, args := range [][]string{{"check", "--help"}, {"check", "-h"}, {"help", "check"}} {
		res := runCmd(t, "", args...)
		if res.code != 0 {
			t.Errorf("%q: exit %d\n%s", args, res.code, res.stderr)
		}
		for _, want := range []string{"Usage:", "nodeclass-guard check [flags] PATH...", "Exit codes", "--cluster-name", "--controller-role", "--iam-snapshot", "--offline", "-o, --output", "--kubeconfig"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("%q: help does not show %q:\n%s", args, want, res.stdout)
			}
		}
	}
	for _, cmd := range []string{"serve", "audit", "snapshot"} {
		if res := runCmd(t, "", cmd, "--help"); res.code != 0 || !strings.Contains(res.stdout, "--cluster-name") {
			t.Errorf("%s --help: exit %d\n%s%s", cmd, res.code, res.stdout, res.stderr)
		}
	}
	for shell, want := range map[string]string{"bash": "__start_nodeclass-guard", "zsh": "#compdef nodeclass-guard", "fish": "complete -c nodeclass-guard"} {
		res := runCmd(t, "", "completion", shell)
		if res.code != 0 || !strings.Contains(res.stdout, want) {
			t.Errorf("completion %s: exit %d, no %q\n%s", shell, res.code, want, res.stderr)
		}
	}
	// What the scripts ask the binary: flag names and their values.
	res := runCmd(t, "", "__complete", "check", "--cluster")
	if res.code != 0 || !strings.Contains(res.stdout, "--cluster-name") {
		t.Errorf("__complete check --cluster: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runCmd(t, "", "__complete", "check", "--on-iam-error", "")
	if res.code != 0 || !strings.Contains(res.stdout, "allow\n") || !strings.Contains(res.stdout, "deny\n") {
		t.Errorf("__complete check --on-iam-error: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestVersion: the version, the commit and the modelled Karpenter range
// (from package karpenter), as make release stamps them.
func TestVersion(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v0.2.0", "0123456789abcdef0123456789abcdef01234567"
	want := "nodeclass-guard v0.2.0\ncommit 0123456789abcdef0123456789abcdef01234567\nkarpenter " + karpenter.Oldest.String() + "–" + karpenter.Newest.String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if res := runCmd(t, "", args...); res.code != 0 || res.stdout != want {
			t.Errorf("%q: exit %d, stdout %q, want %q", args, res.code, res.stdout, want)
		}
	}
	if !strings.Contains(want, "karpenter 1.0–1.15") {
		t.Errorf("the modelled range is not 1.0–1.15: %q (update the README and CHANGELOG if it moved)", want)
	}
}
