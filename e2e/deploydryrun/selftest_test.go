package deploydryrun

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// broken holds objects the API server must not accept as they are, each
// for another reason the dry-run is there to catch, and one it must.
const broken = `
apiVersion: v1
kind: Namespace
metadata:
  name: dryrun-selftest
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: dryrun-selftest-cel
webhooks:
  - name: broken.dryrun-selftest.io
    clientConfig:
      service: {name: x, namespace: dryrun-selftest, path: /validate}
    rules:
      - apiGroups: ["karpenter.k8s.aws"]
        apiVersions: ["v1"]
        resources: ["ec2nodeclasses"]
        operations: ["CREATE"]
    matchConditions:
      - name: does-not-compile
        expression: "object.spec.role =="
    sideEffects: None
    admissionReviewVersions: ["v1"]
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: dryrun-selftest-misspelt
  namespace: dryrun-selftest
spec:
  secretNmae: tls
  dnsNames: [example.com]
  issuerRef: {name: ca}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: dryrun-selftest-cel-rule
  namespace: dryrun-selftest
spec:
  venafi:
    zone: DevOps
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dryrun-selftest-privileged
  namespace: dryrun-selftest
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
        - name: x
          image: example.com/x:1
          securityContext:
            privileged: true
---
apiVersion: v1
kind: Service
metadata:
  name: dryrun-selftest-elsewhere
  namespace: not-expected
spec:
  ports: [{port: 443}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: dryrun-selftest-fine
  namespace: dryrun-selftest
data:
  a: b
`

// TestDryRunReportsRejections shows that the dry-run is not vacuous: each
// broken object comes back as a rejection naming it and quoting the reason,
// the valid one does not, and nothing is persisted.
func TestDryRunReportsRejections(t *testing.T) {
	objs, err := parseObjects("selftest", []byte(broken))
	if err != nil {
		t.Fatal(err)
	}
	s := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rejections, err := s.dryRun(ctx, install{objects: objs})
	if err != nil {
		t.Fatal(err)
	}

	// Each name maps to a piece of what the report must say.
	want := map[string]string{
		"dryrun-selftest-cel":        "matchConditions",                                       // CEL compiled by the API server
		"dryrun-selftest-misspelt":   `unknown field "spec.secretNmae"`,                       // strict field validation
		"dryrun-selftest-cel-rule":   "exactly one of tpp, cloud, or ngts must be configured", // cert-manager's CEL rule
		"dryrun-selftest-privileged": "violate PodSecurity",                                   // a warning, not an error
		"dryrun-selftest-elsewhere":  `namespace "not-expected"`,
	}
	got := map[string]string{}
	for _, r := range rejections {
		got[r.obj.u.GetName()] = r.String()
		t.Log(r)
	}
	for name, fragment := range want {
		report, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s was accepted; want a rejection saying %q", name, fragment)
		case !strings.Contains(report, fragment):
			t.Errorf("rejection of %s does not say %q:\n  %s", name, fragment, report)
		case !strings.Contains(report, "(selftest, document "):
			t.Errorf("rejection of %s does not say where the object was rendered:\n  %s", name, report)
		}
		delete(got, name)
	}
	for name, report := range got {
		t.Errorf("unexpected rejection of %s:\n  %s", name, report)
	}

	// The Namespace was created for real, the rest only dry-run.
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	if err := s.client.Get(ctx, client.ObjectKey{Name: "dryrun-selftest"}, ns); err != nil {
		t.Errorf("namespace dryrun-selftest was not created: %v", err)
	}
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: "dryrun-selftest", Name: "dryrun-selftest-fine"}, cm); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap dryrun-selftest-fine after a dry-run create: got %v, want NotFound", err)
	}

	// A second dry-run of the same install meets the Namespace existing
	// and validates it by a dry-run update instead.
	again, err := s.dryRun(ctx, install{objects: objs[:1]})
	if err != nil || len(again) != 0 {
		t.Errorf("second dry-run of namespace dryrun-selftest: %v %v", again, err)
	}
}

func TestParseObjects(t *testing.T) {
	objs, err := parseObjects("r", []byte("# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: ns}\n---\n# nothing\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.String())
	}
	if want := "ConfigMap ns/cm (r, document 1)|Namespace ns (r, document 2)"; strings.Join(names, "|") != want {
		t.Errorf("parsed %q, want %q", strings.Join(names, "|"), want)
	}

	for doc, want := range map[string]string{
		"apiVersion: v1\nkind: ConfigMap\n":                        "r: document 1 has no apiVersion, kind or metadata.name",
		"kind: ConfigMap\nmetadata: {name: a}\n":                   "r: document 1 has no apiVersion, kind or metadata.name",
		"apiVersion: v1\nkind: [\n":                                "r: document 1:",
		"apiVersion: v1\nkind: A\nmetadata: {name: a}\n---\n- 1\n": "r: document 2",
	} {
		_, err := parseObjects("r", []byte(doc))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("parseObjects(%q) = %v, want an error starting %q", doc, err, want)
		}
	}
}

// TestCertManagerPinsAgree checks that the CRDs these tests install are
// those of the cert-manager release `make e2e` installs on kind:
// hack/versions.env's CERT_MANAGER_VERSION and the module go.mod requires
// must name the same version.
func TestCertManagerPinsAgree(t *testing.T) {
	root := repoRoot(t)
	versions, err := framework.Versions(root)
	if err != nil {
		t.Fatal(err)
	}
	pinned := versions["CERT_MANAGER_VERSION"]
	if pinned == "" {
		t.Fatal("hack/versions.env has no CERT_MANAGER_VERSION")
	}
	m, err := goJSON(root, "list", "-m", "-json", certManagerModule)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != pinned {
		t.Errorf("go.mod requires %s %s but hack/versions.env pins CERT_MANAGER_VERSION=%s: the dry-run would check against other CRDs than `make e2e` installs; align them", certManagerModule, m.Version, pinned)
	}
}
