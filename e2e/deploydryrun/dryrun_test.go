package deploydryrun

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// install is one way of installing nodeclass-guard: the rendered objects
// and the namespaces it puts objects in without rendering them.
type install struct {
	objects []object
	// existing maps each namespace the install expects to find (Helm's
	// --create-namespace, Karpenter's namespace, kube-system) to the labels
	// it has there. The dry-run creates it for real when it does not exist
	// yet; an object in a namespace neither rendered nor listed here is a
	// rejection: the install would fail in a cluster.
	existing map[string]map[string]string
}

// rejection is an object the API server did not accept as rendered.
type rejection struct {
	obj      object
	err      error    // why; nil when the server only warned
	warnings []string // Warning headers of the request
	// unasked is set when the object was not sent: it could not be
	// installed as rendered (err says why).
	unasked bool
}

func (r rejection) String() string {
	switch {
	case r.unasked:
		return fmt.Sprintf("%s: cannot be installed as rendered: %v", r.obj, r.err)
	case r.err != nil:
		return fmt.Sprintf("%s: rejected by the API server: %v", r.obj, r.err)
	}
	return fmt.Sprintf("%s: accepted with warnings, which every installer would see: %q", r.obj, r.warnings)
}

// createOptions are the options of every dry-run create: nothing persisted,
// and unknown or duplicate fields rejected instead of silently dropped (a
// misspelt field would otherwise pass and never take effect).
var createOptions = []client.CreateOption{client.DryRunAll, client.FieldValidation("Strict")}

// dryRun sends an install to the API server: its Namespaces first, created
// for real (namespaced dry-runs need their namespace to exist; a Namespace
// an earlier test created gets a dry-run update to the rendered object
// instead), then the namespaces it expects to find, then every other
// object as a server-side dry-run create. It returns every object the
// server rejected or warned about; the error is for what kept it from
// asking (a namespace it could not create).
func (s *apiServer) dryRun(ctx context.Context, in install) ([]rejection, error) {
	var rejections []rejection
	// take records the outcome of one request about o.
	take := func(o object, err error) {
		warnings := s.warnings.Take()
		if err != nil || len(warnings) > 0 {
			rejections = append(rejections, rejection{obj: o, err: err, warnings: warnings})
		}
	}
	s.warnings.Take()
	// refuse records an object that is not sent, and why.
	refuse := func(o object, err error) {
		rejections = append(rejections, rejection{obj: o, err: err, unasked: true})
	}

	rendered := map[string]bool{}
	for _, o := range in.objects {
		if o.u.GetKind() == "Namespace" && o.u.GetAPIVersion() == "v1" {
			rendered[o.u.GetName()] = true
			take(o, s.applyNamespace(ctx, o.u))
		}
	}

	var rest []object
	needed := map[string]bool{}
	for _, o := range in.objects {
		if rendered[o.u.GetName()] && o.u.GetKind() == "Namespace" && o.u.GetAPIVersion() == "v1" {
			continue
		}
		namespaced, err := s.client.IsObjectNamespaced(o.u)
		if err != nil {
			refuse(o, fmt.Errorf("the API server serves no %s: %w", o.u.GroupVersionKind(), err))
			continue
		}
		ns := o.u.GetNamespace()
		switch {
		case namespaced && ns == "":
			refuse(o, fmt.Errorf("namespaced but rendered without metadata.namespace: it would land in whatever namespace the installer's context names"))
			continue
		case !namespaced && ns != "":
			refuse(o, fmt.Errorf("cluster-scoped but rendered with metadata.namespace %q", ns))
			continue
		case namespaced && !rendered[ns]:
			if _, ok := in.existing[ns]; !ok {
				refuse(o, fmt.Errorf("in namespace %q, which the install neither renders nor expects to exist", ns))
				continue
			}
			needed[ns] = true
		}
		rest = append(rest, o)
	}

	names := make([]string, 0, len(needed))
	for ns := range needed {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		obj := &unstructured.Unstructured{}
		obj.SetAPIVersion("v1")
		obj.SetKind("Namespace")
		obj.SetName(ns)
		obj.SetLabels(in.existing[ns])
		if err := s.client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return rejections, fmt.Errorf("creating namespace %s, which the install expects to exist: %w", ns, err)
		}
		s.warnings.Take()
	}

	for _, o := range rest {
		take(o, s.client.Create(ctx, o.u.DeepCopy(), createOptions...))
	}
	return rejections, nil
}

// applyNamespace creates a rendered Namespace for real; when it exists
// already, it dry-runs an update of the existing one to the rendered
// object, so that the server still validates every field.
func (s *apiServer) applyNamespace(ctx context.Context, ns *unstructured.Unstructured) error {
	err := s.client.Create(ctx, ns.DeepCopy(), client.FieldValidation("Strict"))
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	s.warnings.Take()
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(ns.GroupVersionKind())
	if err := s.client.Get(ctx, client.ObjectKey{Name: ns.GetName()}, current); err != nil {
		return err
	}
	update := ns.DeepCopy()
	update.SetResourceVersion(current.GetResourceVersion())
	return s.client.Update(ctx, update, client.DryRunAll, client.FieldValidation("Strict"))
}

// mustAccept dry-runs an install and fails the test for every object the
// API server rejected or warned about.
func mustAccept(t *testing.T, in install) {
	t.Helper()
	s := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rejections, err := s.dryRun(ctx, in)
	for _, r := range rejections {
		t.Error(r)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rejections) == 0 {
		t.Logf("%d objects accepted: %v", len(in.objects), kinds(in.objects))
	}
}

// requireKinds fails the test when the render lacks one of the kinds, so
// that a render that lost objects cannot pass by having less to dry-run.
func requireKinds(t *testing.T, objs []object, want ...string) {
	t.Helper()
	got := kinds(objs)
	var missing []string
	for _, k := range want {
		if got[k] == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s renders no %s; it renders %v", objs[0].source, strings.Join(missing, ", "), got)
	}
}
