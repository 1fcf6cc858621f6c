package deploy

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// helmOnlyLabels are the labels the chart adds to every object and the
// kustomize base does not carry: who manages the object, not what it is.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}

// withoutHelmLabels returns a copy of an object's fields without the
// Helm-only labels.
func withoutHelmLabels(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		out[k] = v
	}
	meta, _ := fields["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		return out
	}
	newMeta := make(map[string]any, len(meta))
	for k, v := range meta {
		newMeta[k] = v
	}
	newLabels := make(map[string]any, len(labels))
	for k, v := range labels {
		if !slices.Contains(helmOnlyLabels, k) {
			newLabels[k] = v
		}
	}
	newMeta["labels"] = newLabels
	out["metadata"] = newMeta
	return out
}

// diffFields lists where two JSON values differ, by path.
func diffFields(path string, a, b any) []string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v vs %v", path, a, b)}
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var diffs []string
		for _, k := range sorted {
			diffs = append(diffs, diffFields(path+"."+k, av[k], bv[k])...)
		}
		return diffs
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return []string{fmt.Sprintf("%s: %v vs %v", path, a, b)}
		}
		var diffs []string
		for i := range av {
			diffs = append(diffs, diffFields(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(a, b) {
			return []string{fmt.Sprintf("%s: %v vs %v", path, a, b)}
		}
		return nil
	}
}

// assertSameObjects fails when two renderings differ, Helm-only labels
// aside; skip names kinds one side legitimately lacks.
func assertSameObjects(t *testing.T, want, got rendered, skip ...string) {
	t.Helper()
	var wantKeys []objectKey
	for _, k := range want.keys() {
		if !slices.Contains(skip, k.Kind) {
			wantKeys = append(wantKeys, k)
		}
	}
	if gotKeys := got.keys(); !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("%s renders\n  %v\n%s renders\n  %v", got.source, gotKeys, want.source, wantKeys)
	}
	for _, k := range wantKeys {
		diffs := diffFields("", withoutHelmLabels(want.objects[k].fields), withoutHelmLabels(got.objects[k].fields))
		if len(diffs) > 0 {
			t.Errorf("%s differs (%s vs %s):\n  %s", k, want.source, got.source, strings.Join(diffs, "\n  "))
		}
	}
}

func webhooksOf(t *testing.T, r rendered, name string) []admissionregistrationv1.ValidatingWebhook {
	t.Helper()
	return decodeStrict[admissionregistrationv1.ValidatingWebhookConfiguration](t, r.get(t, "ValidatingWebhookConfiguration", "", name)).Webhooks
}

func argsOf(t *testing.T, r rendered, name, ns string) []string {
	t.Helper()
	dep := decodeStrict[appsv1.Deployment](t, r.get(t, "Deployment", ns, name))
	return dep.Spec.Template.Spec.Containers[0].Args
}

// TestChartMatchesBase holds the chart to the base: with default values and
// the documented release name and namespace it installs the same objects
// (the Namespace aside, which `helm install --create-namespace` makes).
func TestChartMatchesBase(t *testing.T) {
	base, chart := renderBase(t), renderChart(t)
	decodeAllStrict(t, chart)
	checkInstallation(t, chart, defaultName, defaultNamespace)

	// The parts that decide admission, compared first for a clear message.
	baseHooks, chartHooks := webhooksOf(t, base, defaultName), webhooksOf(t, chart, defaultName)
	if len(baseHooks) == len(chartHooks) {
		for i := range baseHooks {
			if !reflect.DeepEqual(baseHooks[i].Rules, chartHooks[i].Rules) {
				t.Errorf("webhook %s rules: base %+v, chart %+v", baseHooks[i].Name, baseHooks[i].Rules, chartHooks[i].Rules)
			}
			if !reflect.DeepEqual(baseHooks[i].MatchConditions, chartHooks[i].MatchConditions) {
				t.Errorf("webhook %s matchConditions:\n  base  %+v\n  chart %+v", baseHooks[i].Name, baseHooks[i].MatchConditions, chartHooks[i].MatchConditions)
			}
		}
	}
	if b, c := argsOf(t, base, defaultName, defaultNamespace), argsOf(t, chart, defaultName, defaultNamespace); !slices.Equal(b, c) {
		t.Errorf("container args:\n  base  %q\n  chart %q", b, c)
	}

	// Then everything.
	assertSameObjects(t, base, chart, "Namespace")
}

// TestSnapshotOverlay checks that the iam-snapshot overlay changes only the
// Deployment, to read the snapshot from its ConfigMap, and that the chart's
// iamSnapshot value renders the same Deployment.
func TestSnapshotOverlay(t *testing.T) {
	base, overlay := renderBase(t), renderSnapshotOverlay(t)
	decodeAllStrict(t, overlay)
	checkInstallation(t, overlay, defaultName, defaultNamespace)

	args := argsOf(t, overlay, defaultName, defaultNamespace)
	if got, want := args[len(args)-1], "--iam-snapshot=/etc/nodeclass-guard/iam/snapshot.json"; got != want {
		t.Errorf("last arg %q, want %q", got, want)
	}
	if !slices.Equal(args[:len(args)-1], argsOf(t, base, defaultName, defaultNamespace)) {
		t.Errorf("the overlay changes the base's args: %q", args)
	}
	dep := decodeStrict[appsv1.Deployment](t, overlay.get(t, "Deployment", defaultNamespace, defaultName))
	pod := dep.Spec.Template.Spec
	mounted := false
	for _, m := range pod.Containers[0].VolumeMounts {
		for _, v := range pod.Volumes {
			if m.Name == v.Name && m.MountPath == "/etc/nodeclass-guard/iam" && m.ReadOnly &&
				v.ConfigMap != nil && v.ConfigMap.Name == "nodeclass-guard-iam-snapshot" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("ConfigMap nodeclass-guard-iam-snapshot is not mounted read-only at /etc/nodeclass-guard/iam: %+v", pod.Volumes)
	}

	// Everything but the Deployment is the base's.
	withoutDeployment := func(r rendered) rendered {
		out := rendered{source: r.source, objects: map[objectKey]renderedObject{}}
		for k, o := range r.objects {
			if k.Kind != "Deployment" {
				out.objects[k] = o
			}
		}
		return out
	}
	assertSameObjects(t, withoutDeployment(base), withoutDeployment(overlay))

	chart := renderChart(t, "iamSnapshot.configMap=nodeclass-guard-iam-snapshot")
	key := objectKey{"Deployment", defaultNamespace, defaultName}
	if diffs := diffFields("", withoutHelmLabels(overlay.objects[key].fields), withoutHelmLabels(chart.get(t, key.Kind, key.Namespace, key.Name).fields)); len(diffs) > 0 {
		t.Errorf("chart with iamSnapshot.configMap renders another Deployment than the overlay:\n  %s", strings.Join(diffs, "\n  "))
	}
}

// TestChartValues checks the values that change what is installed.
func TestChartValues(t *testing.T) {
	t.Run("failurePolicy and timeoutSeconds", func(t *testing.T) {
		r := renderChart(t, "failurePolicy=Fail", "timeoutSeconds=3")
		for _, h := range webhooksOf(t, r, defaultName) {
			if h.FailurePolicy == nil || *h.FailurePolicy != admissionregistrationv1.Fail {
				t.Errorf("webhook %s failurePolicy %v, want Fail", h.Name, h.FailurePolicy)
			}
			if h.TimeoutSeconds == nil || *h.TimeoutSeconds != 3 {
				t.Errorf("webhook %s timeoutSeconds %v, want 3", h.Name, h.TimeoutSeconds)
			}
		}
	})

	t.Run("flags", func(t *testing.T) {
		r := renderChart(t,
			"controllerRoleARN=", "clusterName=prod", "region=eu-west-1", "onIAMError=deny",
			"extraArgs[0]=--iam-timeout=3s", "extraArgs[1]=--region=eu-central-1")
		args := argsOf(t, r, defaultName, defaultNamespace)
		if _, ok := argValue(args, "controller-role"); ok {
			t.Errorf("empty controllerRoleARN still passes --controller-role: %q", args)
		}
		for flag, want := range map[string]string{
			"cluster-name": "prod", "on-iam-error": "deny", "iam-timeout": "3s",
			// extraArgs come last, so they win over the chart's own.
			"region": "eu-central-1",
		} {
			if got, _ := argValue(args, flag); got != want {
				t.Errorf("--%s = %q, want %q; args %q", flag, got, want, args)
			}
		}
	})

	t.Run("Karpenter version and Deployment", func(t *testing.T) {
		args := argsOf(t, renderChart(t), defaultName, defaultNamespace)
		for _, flag := range []string{"karpenter-version", "karpenter-deployment"} {
			if got, ok := argValue(args, flag); ok {
				t.Errorf("default values pass --%s=%q; want the Deployment karpenter read by default", flag, got)
			}
		}
		r := renderChart(t, "karpenter.version=1.13.2", "karpenter.deploymentName=karpenter-controller")
		args = argsOf(t, r, defaultName, defaultNamespace)
		if got, _ := argValue(args, "karpenter-version"); got != "1.13.2" {
			t.Errorf("--karpenter-version = %q, want 1.13.2", got)
		}
		if got, _ := argValue(args, "karpenter-deployment"); got != "karpenter/karpenter-controller" {
			t.Errorf("--karpenter-deployment = %q, want karpenter/karpenter-controller", got)
		}
		role := decodeStrict[rbacv1.Role](t, r.get(t, "Role", "karpenter", defaultName))
		if len(role.Rules) != 2 || !slices.Equal(role.Rules[1].ResourceNames, []string{"karpenter-controller"}) {
			t.Errorf("Role rules %+v, want get on Deployment karpenter-controller", role.Rules)
		}
	})

	t.Run("Karpenter in kube-system", func(t *testing.T) {
		r := renderChart(t, "karpenter.namespace=kube-system")
		// The kustomize component for the same case renders the same objects.
		withComponent := renderWithComponents(t, "karpenter-in-kube-system")
		assertSameObjects(t, withComponent, r, "Namespace")

		if got, _ := argValue(argsOf(t, r, defaultName, defaultNamespace), "karpenter-service-account"); got != "kube-system/karpenter" {
			t.Errorf("--karpenter-service-account = %q, want kube-system/karpenter", got)
		}
		role := decodeStrict[rbacv1.Role](t, r.get(t, "Role", "kube-system", defaultName))
		if len(role.Rules) != 2 || !slices.Equal(role.Rules[0].ResourceNames, []string{"karpenter"}) ||
			!slices.Equal(role.Rules[1].Resources, []string{"deployments"}) || !slices.Equal(role.Rules[1].ResourceNames, []string{"karpenter"}) {
			t.Errorf("Role rules %+v, want get on service account karpenter and Deployment karpenter", role.Rules)
		}
		r.get(t, "RoleBinding", "kube-system", defaultName)
	})

	t.Run("release name and namespace", func(t *testing.T) {
		r := renderChartAs(t, "guard", "security")
		decodeAllStrict(t, r)
		checkInstallation(t, r, "guard-nodeclass-guard", "security")
	})

	t.Run("own issuer", func(t *testing.T) {
		r := renderChart(t, "certManager.issuerRef.name=corp-ca", "certManager.issuerRef.kind=ClusterIssuer", "certManager.issuerRef.group=cert-manager.io")
		for _, k := range r.keys() {
			if k.Kind == "Issuer" || (k.Kind == "Certificate" && k.Name != defaultName+"-serving") {
				t.Errorf("with certManager.issuerRef the chart still renders %s", k)
			}
		}
		c := decodeStrict[cmv1.Certificate](t, r.get(t, "Certificate", defaultNamespace, defaultName+"-serving"))
		if ref := c.Spec.IssuerRef; ref.Name != "corp-ca" || ref.Kind != "ClusterIssuer" || ref.Group != "cert-manager.io" {
			t.Errorf("serving Certificate issuerRef %+v, want ClusterIssuer corp-ca", ref)
		}
	})

	t.Run("existing service account, no PodDisruptionBudget", func(t *testing.T) {
		r := renderChart(t, "serviceAccount.create=false", "serviceAccount.name=guard", "podDisruptionBudget.enabled=false")
		for _, k := range r.keys() {
			if k.Kind == "ServiceAccount" || k.Kind == "PodDisruptionBudget" {
				t.Errorf("still renders %s", k)
			}
		}
		dep := decodeStrict[appsv1.Deployment](t, r.get(t, "Deployment", defaultNamespace, defaultName))
		if got := dep.Spec.Template.Spec.ServiceAccountName; got != "guard" {
			t.Errorf("serviceAccountName %q, want guard", got)
		}
		rb := decodeStrict[rbacv1.ClusterRoleBinding](t, r.get(t, "ClusterRoleBinding", "", defaultName))
		if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "guard" {
			t.Errorf("ClusterRoleBinding subjects %+v, want service account guard", rb.Subjects)
		}
	})

	t.Run("serviceMonitor", func(t *testing.T) {
		r := renderChart(t, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus")
		sm := r.get(t, "ServiceMonitor", defaultNamespace, defaultName)
		if got := sm.fields["apiVersion"]; got != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor apiVersion %v", got)
		}
		svc := r.get(t, "Service", defaultNamespace, defaultName)
		spec, _ := sm.fields["spec"].(map[string]any)
		selector, _ := spec["selector"].(map[string]any)
		matchLabels, _ := selector["matchLabels"].(map[string]any)
		svcLabels, _ := svc.fields["metadata"].(map[string]any)["labels"].(map[string]any)
		if len(matchLabels) == 0 {
			t.Fatalf("ServiceMonitor has no selector: %v", spec)
		}
		for k, v := range matchLabels {
			if svcLabels[k] != v {
				t.Errorf("ServiceMonitor selects %s=%v, which the Service's labels %v lack", k, v, svcLabels)
			}
		}
		endpoints, _ := spec["endpoints"].([]any)
		if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "metrics" {
			t.Errorf("ServiceMonitor endpoints %v, want the Service's metrics port", endpoints)
		}
		labels, _ := sm.fields["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor labels %v lack release=prometheus", labels)
		}
	})

	t.Run("invalid values are refused", func(t *testing.T) {
		for _, tc := range []struct{ set, want string }{
			{"failurePolicy=Maybe", "failurePolicy must be Ignore or Fail"},
			{"onIAMError=retry", "onIAMError must be allow or deny"},
			{"timeoutSeconds=31", "timeoutSeconds must be between 1 and 30"},
			{"timeoutSeconds=0", "timeoutSeconds must be between 1 and 30"},
			{"clusterName=", "clusterName is required"},
			{"region=", "region is required"},
		} {
			_, err := runRenderer(t, "helm", chartArgs(defaultName, defaultNamespace, tc.set)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("--set %s: error %v, want one saying %q", tc.set, err, tc.want)
			}
		}
	})
}
