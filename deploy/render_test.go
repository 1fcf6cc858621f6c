package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeclass-guard/nodeclass-guard/deploy/render"
)

// The paths of the contract, one per kind.
const (
	pathEC2NodeClass = "/validate-karpenter-k8s-aws-ec2nodeclass"
	pathNodePool     = "/validate-karpenter-sh-nodepool"
	pathEKSNodeClass = "/validate-eks-amazonaws-com-nodeclass"
)

// The install names the documented install uses: release and namespace
// nodeclass-guard, the names of the kustomize base.
const (
	defaultName      = "nodeclass-guard"
	defaultNamespace = "nodeclass-guard"
	// karpenterNamespace is where the webhook looks for Karpenter's service
	// account when --controller-role is empty (--karpenter-service-account
	// defaults to karpenter/karpenter).
	karpenterNamespace = "karpenter"
)

// readManifests reads every manifest once per test binary run, so that
// `go test`'s result cache sees them (render.ReadSources).
var readManifests = sync.OnceValue(func() error { return render.ReadSources("..") })

// objectKey identifies a rendered object the way the API server does.
type objectKey struct {
	Kind, Namespace, Name string
}

func (k objectKey) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// renderedObject is one document of a renderer's output.
type renderedObject struct {
	key objectKey
	// raw is the document as JSON, for typed decoding.
	raw []byte
	// fields is the document as generic JSON values, for comparison.
	fields map[string]any
}

// rendered is the output of one renderer (kustomize build, helm template).
type rendered struct {
	source  string
	objects map[objectKey]renderedObject
}

func (r rendered) keys() []objectKey {
	keys := make([]objectKey, 0, len(r.objects))
	for k := range r.objects {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

// get returns the object with that key, failing the test when it is missing.
func (r rendered) get(t *testing.T, kind, namespace, name string) renderedObject {
	t.Helper()
	key := objectKey{kind, namespace, name}
	o, ok := r.objects[key]
	if !ok {
		t.Fatalf("%s: no %s; rendered: %v", r.source, key, r.keys())
	}
	return o
}

// parseRendered splits multi-document YAML into objects keyed by kind,
// namespace and name. Documents holding only comments are skipped.
func parseRendered(source string, out []byte) (rendered, error) {
	r := rendered{source: source, objects: map[objectKey]renderedObject{}}
	docs, err := render.SplitObjects(out)
	if err != nil {
		return r, fmt.Errorf("%s: %w", source, err)
	}
	for _, d := range docs {
		kind, name, namespace := d.Object.GetKind(), d.Object.GetName(), d.Object.GetNamespace()
		if kind == "" || name == "" {
			return r, fmt.Errorf("%s: document %d has no kind or metadata.name", source, d.N)
		}
		key := objectKey{kind, namespace, name}
		if _, dup := r.objects[key]; dup {
			return r, fmt.Errorf("%s: %s rendered twice", source, key)
		}
		r.objects[key] = renderedObject{key: key, raw: d.JSON, fields: d.Object.Object}
	}
	return r, nil
}

// runRenderer runs a renderer installed by hack/tools.sh in the deploy
// folder and returns its stdout, or its stderr as the error. A missing
// tool skips the test with a message, or fails it when NCG_REQUIRE_TOOLS=1
// (as `make test` sets), so that CI never passes without these tests.
func runRenderer(t *testing.T, tool string, args ...string) ([]byte, error) {
	t.Helper()
	if err := readManifests(); err != nil {
		t.Fatal(err)
	}
	out, err := render.Run("..", ".", tool, args...)
	var missing *render.MissingToolError
	if errors.As(err, &missing) {
		if os.Getenv("NCG_REQUIRE_TOOLS") == "1" {
			t.Fatal(err)
		}
		t.Skipf("%s; `make test` requires it", err)
	}
	return out, err
}

func mustRender(t *testing.T, source, tool string, args ...string) rendered {
	t.Helper()
	out, err := runRenderer(t, tool, args...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseRendered(source, out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func renderBase(t *testing.T) rendered {
	t.Helper()
	return mustRender(t, "deploy/base", "kustomize", "build", "base")
}

func renderSnapshotOverlay(t *testing.T) rendered {
	t.Helper()
	return mustRender(t, "deploy/overlays/snapshot", "kustomize", "build", "overlays/snapshot")
}

// chartArgs is `helm template` of the chart as release and namespace, with
// --set values.
func chartArgs(release, namespace string, set ...string) []string {
	args := []string{"template", release, "charts/nodeclass-guard", "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

func renderChart(t *testing.T, set ...string) rendered {
	t.Helper()
	return renderChartAs(t, defaultName, defaultNamespace, set...)
}

func renderChartAs(t *testing.T, release, namespace string, set ...string) rendered {
	t.Helper()
	source := "deploy/charts/nodeclass-guard"
	if len(set) > 0 {
		source += " --set " + strings.Join(set, ",")
	}
	return mustRender(t, source, "helm", chartArgs(release, namespace, set...)...)
}

// decodeStrict decodes an object into its API type, refusing unknown
// fields: a misspelt or misplaced field in a manifest fails here instead of
// being pruned silently by the API server.
func decodeStrict[T any](t *testing.T, o renderedObject) *T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(o.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s does not decode as %T: %v", o.key, v, err)
	}
	return &v
}

// decodeAllStrict strictly decodes every object of a kind this test knows
// the type of, and fails on an unexpected kind.
func decodeAllStrict(t *testing.T, r rendered) {
	t.Helper()
	for _, key := range r.keys() {
		o := r.objects[key]
		switch key.Kind {
		case "Namespace":
			decodeStrict[corev1.Namespace](t, o)
		case "ServiceAccount":
			decodeStrict[corev1.ServiceAccount](t, o)
		case "Service":
			decodeStrict[corev1.Service](t, o)
		case "ClusterRole":
			decodeStrict[rbacv1.ClusterRole](t, o)
		case "ClusterRoleBinding":
			decodeStrict[rbacv1.ClusterRoleBinding](t, o)
		case "Role":
			decodeStrict[rbacv1.Role](t, o)
		case "RoleBinding":
			decodeStrict[rbacv1.RoleBinding](t, o)
		case "Deployment":
			decodeStrict[appsv1.Deployment](t, o)
		case "PodDisruptionBudget":
			decodeStrict[policyv1.PodDisruptionBudget](t, o)
		case "ValidatingWebhookConfiguration":
			decodeStrict[admissionregistrationv1.ValidatingWebhookConfiguration](t, o)
		case "Issuer":
			decodeStrict[cmv1.Issuer](t, o)
		case "Certificate":
			decodeStrict[cmv1.Certificate](t, o)
		case "NetworkPolicy":
			decodeStrict[networkingv1.NetworkPolicy](t, o)
		case "ServiceMonitor":
			// prometheus-operator's types are not a dependency; checked by hand.
		default:
			t.Errorf("%s: unexpected kind %s", r.source, key)
		}
	}
}

// baseKeys are the objects the kustomize base installs, no more, no less.
func baseKeys() []objectKey {
	n, ns := defaultName, defaultNamespace
	keys := []objectKey{
		{"Namespace", "", ns},
		{"ServiceAccount", ns, n},
		{"ClusterRole", "", n},
		{"ClusterRoleBinding", "", n},
		{"Role", karpenterNamespace, n},
		{"RoleBinding", karpenterNamespace, n},
		{"Role", "kube-system", n + "-aws-auth"},
		{"RoleBinding", "kube-system", n + "-aws-auth"},
		{"Role", ns, n + "-leader-election"},
		{"RoleBinding", ns, n + "-leader-election"},
		{"Deployment", ns, n},
		{"PodDisruptionBudget", ns, n},
		{"Service", ns, n},
		{"Issuer", ns, n + "-selfsigned"},
		{"Certificate", ns, n + "-ca"},
		{"Issuer", ns, n + "-ca"},
		{"Certificate", ns, n + "-serving"},
		{"ValidatingWebhookConfiguration", "", n},
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

func TestBaseInstallsTheWebhook(t *testing.T) {
	r := renderBase(t)
	if got, want := r.keys(), baseKeys(); !slices.Equal(got, want) {
		t.Fatalf("deploy/base renders\n  %v\nwant\n  %v", got, want)
	}
	decodeAllStrict(t, r)
	checkInstallation(t, r, defaultName, defaultNamespace)

	// The node-join checks read kube-system/aws-auth and nothing else.
	awsAuth := decodeStrict[rbacv1.Role](t, r.get(t, "Role", "kube-system", defaultName+"-aws-auth"))
	if len(awsAuth.Rules) != 1 || !slices.Equal(awsAuth.Rules[0].Resources, []string{"configmaps"}) ||
		!slices.Equal(awsAuth.Rules[0].ResourceNames, []string{"aws-auth"}) || !slices.Equal(awsAuth.Rules[0].Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("aws-auth Role rules %+v, want get, list, watch on configmap aws-auth only", awsAuth.Rules)
	}

	ns := decodeStrict[corev1.Namespace](t, r.get(t, "Namespace", "", defaultNamespace))
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace pod-security.kubernetes.io/enforce = %q, want restricted (the pod meets it)", got)
	}
	dep := decodeStrict[appsv1.Deployment](t, r.get(t, "Deployment", defaultNamespace, defaultName))
	wantArgs := []string{
		"serve",
		"--cert-dir=/tmp/k8s-webhook-server/serving-certs",
		"--port=9443",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--controller-role=arn:aws:iam::111122223333:role/KarpenterControllerRole",
		"--cluster-name=my-cluster",
		"--region=us-west-2",
		"--on-iam-error=allow",
		"--memory-limit-mib=$(MEMORY_LIMIT_MIB)",
		"--leader-elect",
	}
	if got := dep.Spec.Template.Spec.Containers[0].Args; !slices.Equal(got, wantArgs) {
		t.Errorf("container args\n  %q\nwant\n  %q", got, wantArgs)
	}
}

// checkInstallation checks what both the base and the chart must install,
// for objects named name in namespace ns: secure pods wired to their
// certificate, three webhooks on the contract's paths with every choice
// stated, cert-manager objects that chain up, and read-only RBAC.
func checkInstallation(t *testing.T, r rendered, name, ns string) {
	t.Helper()
	dep := decodeStrict[appsv1.Deployment](t, r.get(t, "Deployment", ns, name))
	svc := decodeStrict[corev1.Service](t, r.get(t, "Service", ns, name))
	serving := decodeStrict[cmv1.Certificate](t, r.get(t, "Certificate", ns, name+"-serving"))
	vwc := decodeStrict[admissionregistrationv1.ValidatingWebhookConfiguration](t, r.get(t, "ValidatingWebhookConfiguration", "", name))

	container := checkDeployment(t, r.source, dep, serving.Spec.SecretName)
	checkService(t, r.source, svc, dep, container)
	checkWebhooks(t, r.source, vwc, svc, ns+"/"+serving.Name)
	checkCertificates(t, r, serving, name, ns)
	checkRBAC(t, r, dep, name, ns)

	pdb := decodeStrict[policyv1.PodDisruptionBudget](t, r.get(t, "PodDisruptionBudget", ns, name))
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("%s: PodDisruptionBudget minAvailable = %v, want 1", r.source, pdb.Spec.MinAvailable)
	}
	if !reflect.DeepEqual(pdb.Spec.Selector, dep.Spec.Selector) {
		t.Errorf("%s: PodDisruptionBudget selector %v differs from the Deployment's %v", r.source, pdb.Spec.Selector, dep.Spec.Selector)
	}
}

// argValue returns the value of the last --flag=value in args, as the
// flag parser would keep it.
func argValue(args []string, flag string) (string, bool) {
	value, found := "", false
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
			value, found = v, true
		}
	}
	return value, found
}

func checkDeployment(t *testing.T, source string, dep *appsv1.Deployment, tlsSecret string) corev1.Container {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: Deployment %s: %s", source, dep.Name, fmt.Sprintf(format, args...))
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		errorf("replicas = %v, want 2", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName == "" {
		errorf("no serviceAccountName")
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 30 {
		errorf("terminationGracePeriodSeconds = %v, want 30", pod.TerminationGracePeriodSeconds)
	}
	if psc := pod.SecurityContext; psc == nil ||
		psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errorf("pod securityContext %+v: want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", psc)
	}

	// Spread over zones and nodes, as a preference.
	podLabels := dep.Spec.Template.Labels
	var spreadKeys []string
	for _, c := range pod.TopologySpreadConstraints {
		spreadKeys = append(spreadKeys, c.TopologyKey)
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			errorf("topology spread on %s is %s, want ScheduleAnyway", c.TopologyKey, c.WhenUnsatisfiable)
		}
		if c.LabelSelector == nil || !isSubset(c.LabelSelector.MatchLabels, podLabels) || len(c.LabelSelector.MatchLabels) == 0 {
			errorf("topology spread on %s does not select the pods", c.TopologyKey)
		}
	}
	if want := []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"}; !slices.Equal(spreadKeys, want) {
		errorf("topology spread keys %v, want %v", spreadKeys, want)
	}
	if dep.Spec.Selector == nil || !isSubset(dep.Spec.Selector.MatchLabels, podLabels) {
		errorf("selector %v does not select the pod labels %v", dep.Spec.Selector, podLabels)
	}

	if len(pod.Containers) != 1 {
		errorf("%d containers, want 1", len(pod.Containers))
		return corev1.Container{}
	}
	c := pod.Containers[0]
	if c.Image == "" || !strings.Contains(c.Image, ":") {
		errorf("image %q has no tag", c.Image)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		errorf("container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		errorf("container runAsNonRoot is not true")
	case sc.RunAsUser == nil || *sc.RunAsUser != 65532:
		errorf("container runAsUser = %v, want 65532", sc.RunAsUser)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		errorf("container readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		errorf("container allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		errorf("container capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		errorf("container seccompProfile is not RuntimeDefault")
	case sc.Privileged != nil && *sc.Privileged:
		errorf("container is privileged")
	}

	wantRequests := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("96Mi")}
	wantLimits := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}
	if !equalResources(c.Resources.Requests, wantRequests) || !equalResources(c.Resources.Limits, wantLimits) {
		errorf("resources %v / %v, want requests cpu 50m memory 96Mi, limits memory 128Mi only", c.Resources.Requests, c.Resources.Limits)
	}

	// The distroless image has no shell: the preStop pause must be the
	// kubelet's sleep action.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 ||
		c.Lifecycle.PreStop.Exec != nil {
		errorf("preStop %+v, want sleep.seconds 5 and no exec", c.Lifecycle)
	}

	if len(c.Args) == 0 || c.Args[0] != "serve" {
		errorf("args %q do not start with serve", c.Args)
	}
	for _, flag := range []string{"cluster-name", "region", "on-iam-error"} {
		if v, ok := argValue(c.Args, flag); !ok || v == "" {
			errorf("args %q lack --%s", c.Args, flag)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for flag, want := range map[string]string{
		"port":                      fmt.Sprint(ports["webhook-server"]),
		"metrics-bind-address":      fmt.Sprintf(":%d", ports["metrics"]),
		"health-probe-bind-address": fmt.Sprintf(":%d", ports["health"]),
	} {
		if v, _ := argValue(c.Args, flag); v != want || want == ":0" || want == "0" {
			errorf("--%s=%s does not match the container port %q", flag, v, want)
		}
	}
	if ports["webhook-server"] != 9443 || ports["health"] != 8081 {
		errorf("ports %v, want webhook-server 9443 and health 8081", ports)
	}
	checkProbe := func(kind string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "health" {
			errorf("%s probe %+v, want GET %s on port health", kind, p, path)
		}
	}
	checkProbe("readiness", c.ReadinessProbe, "/readyz")
	checkProbe("liveness", c.LivenessProbe, "/healthz")

	// The serving certificate's Secret is mounted where --cert-dir points.
	certDir, _ := argValue(c.Args, "cert-dir")
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath != certDir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == tlsSecret {
				mounted = true
			}
		}
	}
	if !mounted {
		errorf("Secret %s (the serving certificate) is not mounted at --cert-dir=%s", tlsSecret, certDir)
	}
	return c
}

func checkService(t *testing.T, source string, svc *corev1.Service, dep *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	if len(svc.Spec.Selector) == 0 || !isSubset(svc.Spec.Selector, dep.Spec.Template.Labels) {
		t.Errorf("%s: Service selector %v does not select the webhook pods %v", source, svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	type wantPort struct {
		port        int32
		target      string
		appProtocol string // "" for none
	}
	want := map[string]wantPort{"https": {443, "webhook-server", ""}}
	// With --metrics-secure the metrics port speaks HTTPS, and says so.
	if slices.Contains(c.Args, "--metrics-secure") {
		want[metricsPortSecure] = wantPort{8080, "metrics", "https"}
	} else {
		want["metrics"] = wantPort{8080, "metrics", ""}
	}
	for _, p := range svc.Spec.Ports {
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("%s: Service port %s is unexpected", source, p.Name)
			continue
		}
		delete(want, p.Name)
		if p.Port != w.port || p.TargetPort.String() != w.target {
			t.Errorf("%s: Service port %s is %d -> %s, want %d -> %s", source, p.Name, p.Port, p.TargetPort.String(), w.port, w.target)
		}
		got := ""
		if p.AppProtocol != nil {
			got = *p.AppProtocol
		}
		if got != w.appProtocol {
			t.Errorf("%s: Service port %s has appProtocol %q, want %q", source, p.Name, got, w.appProtocol)
		}
		found := false
		for _, cp := range c.Ports {
			found = found || cp.Name == w.target
		}
		if !found {
			t.Errorf("%s: Service port %s targets %s, which the container does not expose", source, p.Name, w.target)
		}
	}
	for name := range want {
		t.Errorf("%s: Service has no %s port", source, name)
	}
}

// wantWebhook is what each of the three webhooks must be.
type wantWebhook struct {
	name       string
	path       string
	group      string
	versions   []string
	resource   string
	conditions []string
}

func wantWebhooks() []wantWebhook {
	return []wantWebhook{
		{"ec2nodeclass.nodeclass-guard.io", pathEC2NodeClass, "karpenter.k8s.aws", []string{"v1", "v1beta1"}, "ec2nodeclasses",
			[]string{"not-being-deleted", "create-or-checked-fields-changed"}},
		{"nodepool.nodeclass-guard.io", pathNodePool, "karpenter.sh", []string{"v1", "v1beta1"}, "nodepools",
			[]string{"not-being-deleted", "create-or-node-class-ref-changed"}},
		{"eks-nodeclass.nodeclass-guard.io", pathEKSNodeClass, "eks.amazonaws.com", []string{"v1"}, "nodeclasses",
			[]string{"not-being-deleted", "create-or-iam-fields-changed"}},
	}
}

func checkWebhooks(t *testing.T, source string, vwc *admissionregistrationv1.ValidatingWebhookConfiguration, svc *corev1.Service, injectFrom string) {
	t.Helper()
	if got := vwc.Annotations["cert-manager.io/inject-ca-from"]; got != injectFrom {
		t.Errorf("%s: cert-manager.io/inject-ca-from = %q, want %q (the serving Certificate)", source, got, injectFrom)
	}
	want := wantWebhooks()
	if len(vwc.Webhooks) != len(want) {
		t.Fatalf("%s: %d webhooks, want %d", source, len(vwc.Webhooks), len(want))
	}
	for i, w := range want {
		h := vwc.Webhooks[i]
		errorf := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s: webhook %s: %s", source, h.Name, fmt.Sprintf(format, args...))
		}
		if h.Name != w.name {
			errorf("name, want %s", w.name)
		}
		if s := h.ClientConfig.Service; s == nil || s.Name != svc.Name || s.Namespace != svc.Namespace ||
			s.Path == nil || *s.Path != w.path || s.Port == nil || *s.Port != 443 {
			errorf("clientConfig.service %+v, want %s/%s port 443 path %s", s, svc.Namespace, svc.Name, w.path)
		}
		if h.ClientConfig.URL != nil || len(h.ClientConfig.CABundle) != 0 {
			errorf("clientConfig sets url or caBundle; the Service and cert-manager's injector provide them")
		}
		cluster := admissionregistrationv1.ClusterScope
		wantRules := []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{w.group},
				APIVersions: w.versions,
				Resources:   []string{w.resource},
				Scope:       &cluster,
			},
		}}
		if !reflect.DeepEqual(h.Rules, wantRules) {
			errorf("rules %+v, want CREATE and UPDATE of %s %v %s, scope Cluster", h.Rules, w.group, w.versions, w.resource)
		}
		if h.FailurePolicy == nil || *h.FailurePolicy != admissionregistrationv1.Ignore {
			errorf("failurePolicy %v, want Ignore", h.FailurePolicy)
		}
		if h.SideEffects == nil || *h.SideEffects != admissionregistrationv1.SideEffectClassNone {
			errorf("sideEffects %v, want None", h.SideEffects)
		}
		if h.MatchPolicy == nil || *h.MatchPolicy != admissionregistrationv1.Equivalent {
			errorf("matchPolicy %v, want Equivalent", h.MatchPolicy)
		}
		if h.TimeoutSeconds == nil || *h.TimeoutSeconds != 5 {
			errorf("timeoutSeconds %v, want 5", h.TimeoutSeconds)
		}
		if !slices.Equal(h.AdmissionReviewVersions, []string{"v1"}) {
			errorf("admissionReviewVersions %v, want [v1]", h.AdmissionReviewVersions)
		}
		var names []string
		for _, c := range h.MatchConditions {
			names = append(names, c.Name)
			if c.Name == "not-being-deleted" && c.Expression != "!has(object.metadata.deletionTimestamp)" {
				errorf("matchCondition not-being-deleted is %q", c.Expression)
			}
			if strings.HasPrefix(c.Name, "create-or-") && !strings.HasPrefix(c.Expression, "request.operation == 'CREATE' || ") {
				errorf("matchCondition %s does not start by letting every CREATE through: %q", c.Name, c.Expression)
			}
		}
		if !slices.Equal(names, w.conditions) {
			errorf("matchConditions %v, want %v", names, w.conditions)
		}
		if h.ObjectSelector != nil && (len(h.ObjectSelector.MatchLabels) > 0 || len(h.ObjectSelector.MatchExpressions) > 0) {
			errorf("has an objectSelector: a label would let an object skip validation")
		}
	}
}

func checkCertificates(t *testing.T, r rendered, serving *cmv1.Certificate, name, ns string) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", r.source, fmt.Sprintf(format, args...))
	}
	wantDNS := []string{name, name + "." + ns, name + "." + ns + ".svc", name + "." + ns + ".svc.cluster.local"}
	if !slices.Equal(serving.Spec.DNSNames, wantDNS) {
		errorf("serving Certificate dnsNames %v, want %v", serving.Spec.DNSNames, wantDNS)
	}
	if d := serving.Spec.Duration; d == nil || d.Duration.String() != "2160h0m0s" {
		errorf("serving Certificate duration %v, want 2160h", d)
	}
	if d := serving.Spec.RenewBefore; d == nil || d.Duration.String() != "720h0m0s" {
		errorf("serving Certificate renewBefore %v, want 720h", d)
	}
	checkKey := func(c *cmv1.Certificate) {
		t.Helper()
		k := c.Spec.PrivateKey
		if k == nil || k.Algorithm != cmv1.ECDSAKeyAlgorithm || k.Size != 256 || k.RotationPolicy != cmv1.RotationPolicyAlways {
			errorf("Certificate %s privateKey %+v, want ECDSA 256 with rotationPolicy Always", c.Name, k)
		}
	}
	checkKey(serving)
	if serving.Spec.IsCA {
		errorf("serving Certificate is a CA")
	}

	// serving <- CA Issuer <- CA Certificate <- self-signed Issuer.
	issuerOf := func(c *cmv1.Certificate) *cmv1.Issuer {
		t.Helper()
		ref := c.Spec.IssuerRef
		if ref.Kind != "Issuer" || (ref.Group != "" && ref.Group != "cert-manager.io") {
			errorf("Certificate %s issuerRef %+v, want an Issuer of this install", c.Name, ref)
			return nil
		}
		return decodeStrict[cmv1.Issuer](t, r.get(t, "Issuer", ns, ref.Name))
	}
	caIssuer := issuerOf(serving)
	if caIssuer == nil {
		return
	}
	if caIssuer.Spec.CA == nil {
		errorf("Issuer %s, which signs the serving certificate, is not a CA issuer", caIssuer.Name)
		return
	}
	var ca *cmv1.Certificate
	for _, key := range r.keys() {
		if key.Kind != "Certificate" || key.Namespace != ns {
			continue
		}
		c := decodeStrict[cmv1.Certificate](t, r.objects[key])
		if c.Spec.SecretName == caIssuer.Spec.CA.SecretName {
			ca = c
		}
	}
	if ca == nil {
		errorf("no Certificate writes the CA Secret %s", caIssuer.Spec.CA.SecretName)
		return
	}
	if !ca.Spec.IsCA {
		errorf("Certificate %s, the CA, lacks isCA", ca.Name)
	}
	checkKey(ca)
	if root := issuerOf(ca); root != nil && root.Spec.SelfSigned == nil {
		errorf("Issuer %s, which signs the CA, is not self-signed", root.Name)
	}
}

func checkRBAC(t *testing.T, r rendered, dep *appsv1.Deployment, name, ns string) {
	t.Helper()
	sa := dep.Spec.Template.Spec.ServiceAccountName
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}

	cr := decodeStrict[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", "", name))
	wantClusterRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"karpenter.k8s.aws"}, Resources: []string{"ec2nodeclasses"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"eks.amazonaws.com"}, Resources: []string{"nodeclasses"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"karpenter.sh"}, Resources: []string{"nodepools"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"karpenter.sh"}, Resources: []string{"nodeclaims"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if !reflect.DeepEqual(cr.Rules, wantClusterRules) {
		t.Errorf("%s: ClusterRole rules %+v, want read-only access to the node classes, NodePools and NodeClaims (the update guard), and creating Events (the audit's findings)", r.source, cr.Rules)
	}
	crb := decodeStrict[rbacv1.ClusterRoleBinding](t, r.get(t, "ClusterRoleBinding", "", name))
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name}) || !reflect.DeepEqual(crb.Subjects, subject) {
		t.Errorf("%s: ClusterRoleBinding binds %+v to %+v, want ClusterRole %s to %+v", r.source, crb.RoleRef, crb.Subjects, cr.Name, subject)
	}

	role := decodeStrict[rbacv1.Role](t, r.get(t, "Role", karpenterNamespace, name))
	wantRoleRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, ResourceNames: []string{"karpenter"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"karpenter"}, Verbs: []string{"get"}},
	}
	if !reflect.DeepEqual(role.Rules, wantRoleRules) {
		t.Errorf("%s: Role rules %+v, want get on the karpenter service account and Deployment only", r.source, role.Rules)
	}
	rb := decodeStrict[rbacv1.RoleBinding](t, r.get(t, "RoleBinding", karpenterNamespace, name))
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}) || !reflect.DeepEqual(rb.Subjects, subject) {
		t.Errorf("%s: RoleBinding binds %+v to %+v, want Role %s to %+v", r.source, rb.RoleRef, rb.Subjects, role.Name, subject)
	}

	// The audit's leader election: Leases in the webhook's own namespace.
	lease := decodeStrict[rbacv1.Role](t, r.get(t, "Role", ns, name+"-leader-election"))
	wantLeaseRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	}
	if !reflect.DeepEqual(lease.Rules, wantLeaseRules) {
		t.Errorf("%s: Role %s rules %+v, want Leases only", r.source, lease.Name, lease.Rules)
	}
	lrb := decodeStrict[rbacv1.RoleBinding](t, r.get(t, "RoleBinding", ns, name+"-leader-election"))
	if lrb.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: lease.Name}) || !reflect.DeepEqual(lrb.Subjects, subject) {
		t.Errorf("%s: RoleBinding binds %+v to %+v, want Role %s to %+v", r.source, lrb.RoleRef, lrb.Subjects, lease.Name, subject)
	}
}

func isSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if w, ok := of[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if w, ok := b[name]; !ok || q.Cmp(w) != 0 {
			return false
		}
	}
	return true
}
