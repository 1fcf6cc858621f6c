package main

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// TestCheckKarpenterVersion: check says which Karpenter version it asked
// as, in text and JSON, and asks that version's requests.
func TestCheckKarpenterVersion(t *testing.T) {
	for _, tc := range []struct {
		flag, version, source, text string
	}{
		{"", karpenter.Newest.String(), "default: the newest modelled version", "permission checks asked Karpenter 1.15's requests (default: the newest modelled version)"},
		{"1.12.3", "1.12", "--karpenter-version", "permission checks asked Karpenter 1.12's requests (--karpenter-version: 1.12.3)"},
		{"v1.99.0", "1.15", "--karpenter-version", "1.99.0 is newer than the model's newest version, 1.15; judged as 1.15"},
	} {
		args := iamArgs(ctlKarpenter)
		if tc.flag != "" {
			args = append(args, "--karpenter-version", tc.flag)
		}
		res := runCmd(t, "", checkArgs(append(args, "-o", "json"), "testdata/good")...)
		if res.code != 0 {
			t.Fatalf("--karpenter-version=%q: exit %d, stderr %s", tc.flag, res.code, res.stderr)
		}
		r := parseReport(t, res.stdout)
		if r.Karpenter == nil || r.Karpenter.Version != tc.version || r.Karpenter.Source != tc.source {
			t.Errorf("--karpenter-version=%q: karpenter %+v, want version %s from %s", tc.flag, r.Karpenter, tc.version, tc.source)
		}
		text := runCmd(t, "", checkArgs(args, "testdata/good")...)
		if !strings.Contains(text.stdout, tc.text) {
			t.Errorf("--karpenter-version=%q: text report lacks %q:\n%s", tc.flag, tc.text, text.stdout)
		}
	}
	// The version changes what is asked: 1.12's instance profile has no
	// path, 1.13's has one; a policy scoped to the new path tells them
	// apart (webhook/karpenter_versions_test.go); here, the JSON fix of a
	// denial names the version's ARN.
	res := runCmd(t, "", checkArgs(append(iamArgs(ctlLimited), "--karpenter-version", "1.12", "-o", "json"), "testdata/good/ec2nodeclass.yaml")...)
	if !strings.Contains(res.stdout, "instance-profile/demo_") || strings.Contains(res.stdout, "instance-profile/karpenter/") {
		t.Errorf("Karpenter 1.12: want the profile at the root:\n%s", res.stdout)
	}
	res = runCmd(t, "", checkArgs(append(iamArgs(ctlLimited), "--karpenter-version", "1.13", "-o", "json"), "testdata/good/ec2nodeclass.yaml")...)
	if !strings.Contains(res.stdout, "instance-profile/karpenter/us-west-2/demo/"+karpenter.PlaceholderUID+"/demo_") {
		t.Errorf("Karpenter 1.13: want the profile under /karpenter/<region>/<cluster>/<placeholder UID>/:\n%s", res.stdout)
	}
}

// TestKarpenterVersionUnusable: a version that cannot be used is an error
// naming the flag, exit 2, in every command that takes it.
func TestKarpenterVersionUnusable(t *testing.T) {
	for _, cmd := range []string{"check", "audit", "serve"} {
		for _, v := range []string{"latest", "0.37.0", "1.x"} {
			args := []string{cmd, "--karpenter-version", v}
			if cmd == "check" {
				args = append(args, "testdata/good")
			}
			res := runCmd(t, "", args...)
			if res.code != 2 || !strings.Contains(res.stderr, "--karpenter-version") {
				t.Errorf("%s --karpenter-version=%s: exit %d, stderr %q; want 2 and the flag named", cmd, v, res.code, res.stderr)
			}
		}
	}
}

// TestKarpenterVersionFromDeployment: serve reads the version from the
// image tag of Karpenter's controller container, and says where it came
// from; without a usable tag it falls back to the newest modelled
// version and says why.
func TestKarpenterVersionFromDeployment(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dep := func(name string, containers ...corev1.Container) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name}}
		d.Spec.Template.Spec.Containers = containers
		return d
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		dep("karpenter", corev1.Container{Name: "sidecar", Image: "busybox:1.36"},
			corev1.Container{Name: "controller", Image: "public.ecr.aws/karpenter/controller:1.3.2@sha256:0123456789abcdef"}),
		dep("digest-only", corev1.Container{Name: "controller", Image: "public.ecr.aws/karpenter/controller@sha256:0123"}),
		dep("registry-port", corev1.Container{Name: "manager", Image: "registry.local:5000/karpenter/controller:v1.13.0"}),
		dep("too-old", corev1.Container{Name: "controller", Image: "public.ecr.aws/karpenter/controller:0.37.0"}),
	).Build()
	for _, tc := range []struct {
		name, version, source, note string
	}{
		{"karpenter", "1.3", "the image tag of Deployment kube-system/karpenter (public.ecr.aws/karpenter/controller:1.3.2@sha256:0123456789abcdef)", ""},
		{"registry-port", "1.13", "the image tag of Deployment kube-system/registry-port", ""},
		{"digest-only", "1.15", "default: the newest modelled version", "has no Karpenter controller image with a version tag"},
		{"too-old", "1.15", "default: the newest modelled version", "before 1.0"},
		{"absent", "1.15", "default: the newest modelled version", "could not be read"},
	} {
		var notes []string
		got := karpenterVersionFromDeployment(context.Background(), c, "kube-system", tc.name, func(s string) { notes = append(notes, s) })
		if got.Model.String() != tc.version || !strings.Contains(got.Source, tc.source) {
			t.Errorf("%s: %+v, want %s from %q", tc.name, got, tc.version, tc.source)
		}
		if tc.note != "" && (len(notes) != 1 || !strings.Contains(notes[0], tc.note)) {
			t.Errorf("%s: notes %q, want one saying %q", tc.name, notes, tc.note)
		}
	}
}
