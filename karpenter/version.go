// Package karpenter models the requests Karpenter's controller makes to IAM
// and EC2 for one EC2NodeClass, per Karpenter version: for each request the
// action, every resource ARN and every condition key and value IAM sees.
//
// It is written from reading Karpenter's source at each release tag (not
// copied from it); each difference between versions names the release and
// the pull request it comes from (see Changes). It knows nothing of
// Kubernetes objects or of IAM's answers: the rules in webhook/ turn a class
// into an Input, ask authz the Requests as questions, and judge the answers.
// ARNs are built by authz (authz/arn.go), the one owner of ARNs.
package karpenter

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// Version is a Karpenter (karpenter-provider-aws) minor version. The model
// has one entry per minor release; patch releases of a minor make the same
// requests as far as the model knows (a difference found in a patch would
// become a field of its own here).
type Version struct {
	Major, Minor int
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// atLeast reports whether v is minor or newer (major 1 throughout).
func (v Version) atLeast(minor int) bool { return v.Major > 1 || v.Minor >= minor }

// Oldest and Newest bound the modelled versions: 1.0 (the first v1 API;
// older releases served v1beta1 and are not modelled) to 1.15, the newest
// release on the Go module proxy when the model was written (this module's
// hack/versions.env pins KARPENTER_AWS_VERSION 1.15.1).
var (
	Oldest = Version{1, 0}
	Newest = Version{1, 15}
)

// Modelled returns every modelled version, oldest first.
func Modelled() []Version {
	var out []Version
	for m := Oldest.Minor; m <= Newest.Minor; m++ {
		out = append(out, Version{1, m})
	}
	return out
}

// Resolved is a version as the user gave it and the modelled version the
// checks use for it.
type Resolved struct {
	// Given is what the flag or the image tag said ("1.13.2", "v1.3.0").
	Given string
	// Source says where Given came from, for the log and the report
	// ("--karpenter-version", "default: newest modelled", "image tag of
	// Deployment kube-system/karpenter").
	Source string
	// Model is the modelled version used.
	Model Version
	// Note says how Given maps to Model when it is not exactly one of its
	// releases ("1.16.0 is newer than the model's newest, 1.15; judged as
	// 1.15"), "" otherwise.
	Note string
}

// String is the one line reports and logs print.
func (r Resolved) String() string {
	s := "Karpenter " + r.Model.String()
	if r.Given != "" && strings.TrimPrefix(r.Given, "v") != r.Model.String() {
		s += " (" + r.Given + ")"
	}
	if r.Source != "" {
		s += ", from " + r.Source
	}
	if r.Note != "" {
		s += "; " + r.Note
	}
	return s
}

// Default is the newest modelled version, as used when nothing says which
// Karpenter runs.
func Default(source string) Resolved {
	if source == "" {
		source = "default: the newest modelled version"
	}
	return Resolved{Given: Newest.String(), Source: source, Model: Newest}
}

// Resolve parses a Karpenter version ("1.3", "1.3.2", "v1.3.2", an image
// tag such as "1.3.2@sha256:...") and maps it to the modelled version: a
// release between modelled ones is judged as the nearest lower modelled
// one, a release newer than the model as the newest, with a Note saying
// so. flag names the flag or field for the error.
func Resolve(given, source, flag string) (Resolved, error) {
	s := strings.TrimSpace(given)
	if at := strings.IndexByte(s, '@'); at >= 0 {
		s = s[:at]
	}
	if !strings.HasPrefix(s, "v") {
		s = "v" + s
	}
	if !semver.IsValid(s) {
		return Resolved{}, fmt.Errorf("%s=%q: not a Karpenter version; want MAJOR.MINOR or MAJOR.MINOR.PATCH, for example %s", flag, given, Newest)
	}
	parts := strings.SplitN(strings.TrimPrefix(semver.Canonical(s), "v"), ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	v := Version{major, minor}
	r := Resolved{Given: given, Source: source, Model: v}
	switch {
	case v.Major < 1:
		return Resolved{}, fmt.Errorf("%s=%q: Karpenter before 1.0 (the v1beta1 API) is not modelled; the model covers %s to %s", flag, given, Oldest, Newest)
	case v.Major > Newest.Major || (v.Major == Newest.Major && v.Minor > Newest.Minor):
		r.Model = Newest
		r.Note = fmt.Sprintf("%s is newer than the model's newest version, %s; judged as %s", given, Newest, Newest)
	}
	if semver.Prerelease(s) != "" {
		r.Note = strings.TrimPrefix(r.Note+"; ", "; ") + "a pre-release is judged as its minor version"
	}
	return r, nil
}
