package envtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// Names of the three webhooks' API groups.
const (
	groupEC2NodeClass = "karpenter.k8s.aws"
	groupNodePool     = "karpenter.sh"
	groupEKS          = "eks.amazonaws.com"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns an admin client with its own warning recorder; the
// serve log is attached to the test's output when the test fails.
func newClient(t *testing.T, e *framework.Env) *framework.Client {
	t.Helper()
	c, err := e.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nodeclass-guard serve output so far:\n%s", e.ServeLog())
		}
	})
	return c
}

// readExample reads one manifest under examples/.
func readExample(t *testing.T, e *framework.Env, rel string) []framework.Document {
	t.Helper()
	docs, err := framework.ReadManifests(filepath.Join(e.Root, "examples", rel))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatalf("examples/%s holds no objects", rel)
	}
	return docs
}

// create creates obj and returns the warnings the API server sent back.
func create(ctx context.Context, c *framework.Client, obj *unstructured.Unstructured, opts ...client.CreateOption) ([]string, error) {
	c.TakeWarnings()
	err := c.Create(ctx, obj, opts...)
	return c.TakeWarnings(), err
}

// update updates obj and returns the warnings.
func update(ctx context.Context, c *framework.Client, obj *unstructured.Unstructured, opts ...client.UpdateOption) ([]string, error) {
	c.TakeWarnings()
	err := c.Update(ctx, obj, opts...)
	return c.TakeWarnings(), err
}

// deleteAtEnd removes obj when the test ends, finalizers first.
func deleteAtEnd(t *testing.T, c client.Client, obj *unstructured.Unstructured) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	gvk := obj.GroupVersionKind()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(gvk)
		if err := c.Get(ctx, key, cur); err != nil {
			return
		}
		if len(cur.GetFinalizers()) > 0 {
			cur.SetFinalizers(nil)
			_ = c.Update(ctx, cur)
		}
		if err := c.Delete(ctx, cur); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleaning up %s %s: %v", gvk.Kind, key.Name, err)
		}
	})
}

// denialLine is one problem of a denial: `<field>: [<Code>] <text>`.
var denialLine = regexp.MustCompile(`^(spec(\.[A-Za-z]+(\[[0-9]+\])?)*): \[([A-Za-z0-9]+)\] \S.*$`)

// warningFormat is the contract's warning: `[<Code>] <field>: <text>`.
var warningFormat = regexp.MustCompile(`^\[([A-Za-z0-9]+)\] (spec(\.[A-Za-z]+(\[[0-9]+\])?)*): \S.*$`)

// requireDenied asserts that err is the webhook's denial, as the API server
// relays it: 403 Forbidden, `admission webhook "<name>" denied the request:`
// followed by one `<field>: [<Code>] ...` line per problem, and that the
// codes include want ("field: Code", or "Code" on any field). It returns
// the problem lines.
func requireDenied(t *testing.T, e *framework.Env, group string, err error, want ...string) []string {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a denial with %v", want)
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		t.Fatalf("not an API status error: %v", err)
	}
	if !apierrors.IsForbidden(err) || st.Status().Code != 403 {
		t.Fatalf("want 403 Forbidden from the webhook (a schema error would be 422), got %d %s: %v",
			st.Status().Code, apierrors.ReasonForError(err), err)
	}
	prefix := `admission webhook "` + e.WebhookName(group) + `" denied the request: `
	msg := st.Status().Message
	if !strings.HasPrefix(msg, prefix) {
		t.Fatalf("denial does not come from webhook %q:\n%s", e.WebhookName(group), msg)
	}
	lines := strings.Split(strings.TrimPrefix(msg, prefix), "\n")
	for _, l := range lines {
		if !denialLine.MatchString(l) {
			t.Errorf("denial line %q is not `<field>: [<Code>] <text>`", l)
		}
	}
	for _, w := range want {
		field, code, withField := strings.Cut(w, ": ")
		found := false
		for _, l := range lines {
			if withField && strings.HasPrefix(l, field+": ["+code+"] ") || !withField && framework.HasCode(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("denial lacks %q; got:\n%s", w, msg)
		}
	}
	return lines
}

// requireAllowed asserts an admission without error.
func requireAllowed(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: want admitted, got %v", what, err)
	}
}

// requireWarnings checks every warning's format (`[Code] field: text`,
// under 256 characters) and that want (each "[Code] field") are among
// them, and that no warning carries a code in forbid.
func requireWarnings(t *testing.T, warnings []string, want []string, forbid ...string) {
	t.Helper()
	for _, w := range warnings {
		if !warningFormat.MatchString(w) {
			t.Errorf("warning %q is not `[<Code>] <field>: <text>`", w)
		}
		if len(w) >= 256 {
			t.Errorf("warning is %d characters, want under 256: %q", len(w), w)
		}
		for _, f := range forbid {
			if framework.HasCode(w, f) {
				t.Errorf("unexpected %s warning: %q", f, w)
			}
		}
	}
	for _, want := range want {
		found := false
		for _, w := range warnings {
			if strings.HasPrefix(w, want+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no warning %q...; got %q", want, warnings)
		}
	}
}

// exists reports whether the object is in the API server.
func exists(ctx context.Context, t *testing.T, c client.Client, obj *unstructured.Unstructured) bool {
	t.Helper()
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// get reads the object's current state.
func get(ctx context.Context, t *testing.T, c client.Client, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// ec2NodeClass builds a valid v1 EC2NodeClass (shape of
// examples/good/ec2nodeclass.yaml) with the given role or instance profile.
func ec2NodeClass(name string, iam map[string]any) *unstructured.Unstructured {
	spec := map[string]any{
		"amiSelectorTerms":           []any{map[string]any{"alias": "al2023@latest"}},
		"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
		"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
	}
	for k, v := range iam {
		spec[k] = v
	}
	return obj("karpenter.k8s.aws/v1", "EC2NodeClass", name, spec)
}

// nodePool builds a v1 NodePool whose nodeClassRef names group/kind/name.
func nodePool(name, group, kind, class string) *unstructured.Unstructured {
	return obj("karpenter.sh/v1", "NodePool", name, map[string]any{
		"template": map[string]any{"spec": map[string]any{
			"nodeClassRef": map[string]any{"group": group, "kind": kind, "name": class},
			"requirements": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}},
		}},
	})
}

// eksNodeClass builds an EKS Auto Mode NodeClass.
func eksNodeClass(name string, iam map[string]any) *unstructured.Unstructured {
	spec := map[string]any{
		"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
		"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
	}
	for k, v := range iam {
		spec[k] = v
	}
	return obj("eks.amazonaws.com/v1", "NodeClass", name, spec)
}

func obj(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
}

func role(name string) map[string]any    { return map[string]any{"role": name} }
func profile(name string) map[string]any { return map[string]any{"instanceProfile": name} }

// nested reads a string field.
func nested(o *unstructured.Unstructured, fields ...string) string {
	v, _, _ := unstructured.NestedString(o.Object, fields...)
	return v
}

// setNested sets a string field.
func setNested(o *unstructured.Unstructured, value string, fields ...string) error {
	return unstructured.SetNestedField(o.Object, value, fields...)
}

// webhookPath returns the path the registered webhook for group calls.
func webhookPath(t *testing.T, e *framework.Env, group string) string {
	t.Helper()
	for _, wh := range e.WebhookConfiguration().Webhooks {
		for _, r := range wh.Rules {
			for _, g := range r.APIGroups {
				if g == group && wh.ClientConfig.URL != nil {
					return strings.TrimPrefix(*wh.ClientConfig.URL, e.WebhookURL)
				}
			}
		}
	}
	t.Fatalf("no webhook for group %s", group)
	return ""
}

// webhookRequests reads controller-runtime's request counter for one
// webhook path from serve's metrics endpoint: the only way to see, from
// outside, whether the API server called the webhook at all.
func webhookRequests(t *testing.T, e *framework.Env, path string) float64 {
	t.Helper()
	resp, err := http.Get(e.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	label := `webhook="` + path + `"`
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "controller_runtime_webhook_requests_total{") || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += v
	}
	return total
}
