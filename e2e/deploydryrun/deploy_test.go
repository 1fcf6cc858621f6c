package deploydryrun

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The kinds every install of nodeclass-guard renders, Namespace aside.
var installKinds = []string{
	"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
	"Deployment", "PodDisruptionBudget", "Service", "Issuer", "Certificate",
	"ValidatingWebhookConfiguration",
}

// restricted are the labels of a namespace enforcing the restricted Pod
// Security Standard, as docs/deploy.md has Helm users label the namespace
// --create-namespace made. Pod Security admission then warns about a
// Deployment whose pods it would refuse, and a warning fails these tests.
var restricted = map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}

// karpenterNamespace is where the base and the chart's defaults expect
// Karpenter's service account (the Role that reads it lives there).
const karpenterNamespace = "karpenter"

// kubeSystem holds the aws-auth ConfigMap, which the node-join checks read
// (a Role there allows that one object); every cluster has it.
const kubeSystem = "kube-system"

func TestKustomizeBase(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/base")
	requireKinds(t, objs, append([]string{"Namespace"}, installKinds...)...)
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{karpenterNamespace: nil, kubeSystem: nil}})
}

func TestKustomizeSnapshotOverlay(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/overlays/snapshot")
	requireKinds(t, objs, append([]string{"Namespace"}, installKinds...)...)
	// The overlay reads its snapshot from a ConfigMap the user creates; a
	// Deployment naming a ConfigMap that does not exist yet is valid.
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{karpenterNamespace: nil, kubeSystem: nil}})
}

// kustomizeWithComponents renders deploy/base with the named components of
// deploy/components, in that order, as an overlay listing them would.
func kustomizeWithComponents(t *testing.T, names ...string) []object {
	t.Helper()
	root := repoRoot(t)
	// Kustomize wants the paths of a kustomization relative to it.
	dir := t.TempDir()
	rel := func(path string) string {
		t.Helper()
		r, err := filepath.Rel(dir, filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	components := make([]string, len(names))
	for i, n := range names {
		components[i] = rel(filepath.Join("deploy", "components", n))
	}
	kustomization := "resources: [" + rel("deploy/base") + "]\ncomponents: [" + strings.Join(components, ", ") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomizeBuild(t, dir)
}

func TestKustomizeKarpenterInKubeSystem(t *testing.T) {
	objs := kustomizeWithComponents(t, "karpenter-in-kube-system")
	requireKinds(t, objs, append([]string{"Namespace"}, installKinds...)...)
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{"kube-system": nil}})
}

// TestKustomizeSecureMetrics dry-runs the base with the secure-metrics
// component: its ClusterRoles (the reader's is a nonResourceURLs rule) and
// binding, the second mount of the serving certificate, and the Service
// port with appProtocol.
func TestKustomizeSecureMetrics(t *testing.T) {
	objs := kustomizeWithComponents(t, "secure-metrics")
	requireKinds(t, objs, append([]string{"Namespace"}, installKinds...)...)
	requireNames(t, objs, "ClusterRole", "nodeclass-guard-metrics-auth", "nodeclass-guard-metrics-reader")
	requireNames(t, objs, "ClusterRoleBinding", "nodeclass-guard-metrics-auth")
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{karpenterNamespace: nil, kubeSystem: nil}})
}

func TestHelmChartDefaults(t *testing.T) {
	objs := helmTemplate(t, "nodeclass-guard", "nodeclass-guard")
	requireKinds(t, objs, installKinds...)
	if n := kinds(objs)["ServiceMonitor"]; n != 0 {
		t.Errorf("the chart's defaults render %d ServiceMonitor(s): a cluster without prometheus-operator's CRD could not install it", n)
	}
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{
		"nodeclass-guard":  restricted,
		karpenterNamespace: nil,
		kubeSystem:         nil,
	}})
}

// TestHelmChartServiceMonitor dry-runs the chart with its ServiceMonitor
// against the test's own ServiceMonitor CRD (testdata), prometheus-operator
// not being a dependency: it checks the group, version, kind, scope and the
// fields the template renders, not every rule of prometheus-operator's CRD.
func TestHelmChartServiceMonitor(t *testing.T) {
	objs := helmTemplate(t, "nodeclass-guard", "nodeclass-guard",
		"metrics.serviceMonitor.enabled=true",
		"metrics.serviceMonitor.interval=15s",
		"metrics.serviceMonitor.labels.release=prometheus")
	requireKinds(t, objs, slices.Concat(installKinds, []string{"ServiceMonitor"})...)
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{
		"nodeclass-guard":  restricted,
		karpenterNamespace: nil,
		kubeSystem:         nil,
	}})
}

// TestHelmChartSecureMetrics dry-runs the chart with metrics.secure and its
// ServiceMonitor (HTTPS, bearer token file, tlsConfig against the serving
// certificate's CA), and with a tlsConfig of the user's.
func TestHelmChartSecureMetrics(t *testing.T) {
	for _, extra := range [][]string{
		nil,
		{"metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true"},
	} {
		set := append([]string{"metrics.secure=true", "metrics.serviceMonitor.enabled=true"}, extra...)
		objs := helmTemplate(t, "nodeclass-guard", "nodeclass-guard", set...)
		requireKinds(t, objs, slices.Concat(installKinds, []string{"ServiceMonitor"})...)
		requireNames(t, objs, "ClusterRole", "nodeclass-guard-metrics-auth", "nodeclass-guard-metrics-reader")
		requireNames(t, objs, "ClusterRoleBinding", "nodeclass-guard-metrics-auth")
		mustAccept(t, install{objects: objs, existing: map[string]map[string]string{
			"nodeclass-guard":  restricted,
			karpenterNamespace: nil,
			kubeSystem:         nil,
		}})
	}
}

// requireNames fails the test when the render lacks an object of that kind
// with one of the names.
func requireNames(t *testing.T, objs []object, kind string, names ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, o := range objs {
		if o.u.GetKind() == kind {
			have[o.u.GetName()] = true
		}
	}
	for _, n := range names {
		if !have[n] {
			t.Fatalf("%s renders no %s %s", objs[0].source, kind, n)
		}
	}
}

// TestHelmChartValues dry-runs the chart with the values that change what
// is rendered, under another release name and namespace.
func TestHelmChartValues(t *testing.T) {
	objs := helmTemplate(t, "guard", "platform",
		"replicas=3",
		"controllerRoleARN=",
		"clusterName=prod",
		"region=eu-west-1",
		"onIAMError=deny",
		"failurePolicy=Fail",
		"timeoutSeconds=10",
		"priorityClassName=system-cluster-critical",
		"karpenter.namespace=kube-system",
		"iamSnapshot.configMap=guard-iam-snapshot",
		"certManager.issuerRef.name=corp-ca",
		"certManager.issuerRef.kind=ClusterIssuer",
		"certManager.issuerRef.group=cert-manager.io",
		"certManager.duration=720h",
		"certManager.renewBefore=240h",
		"clusterDomain=corp.internal",
		"imagePullSecrets[0].name=regcred",
		`nodeSelector.kubernetes\.io/os=linux`,
		"tolerations[0].key=dedicated",
		"tolerations[0].operator=Equal",
		"tolerations[0].value=platform",
		"tolerations[0].effect=NoSchedule",
		"podLabels.team=platform",
		"podAnnotations.example\\.com/owner=platform",
		"extraArgs[0]=--iam-cache-ttl=10m",
		"extraEnv[0].name=HTTPS_PROXY",
		"extraEnv[0].value=http://proxy.corp.internal:3128",
		"metrics.port=9090",
		"metrics.secure=true",
	)
	// With its own issuer the chart renders no Issuer.
	requireKinds(t, objs, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "PodDisruptionBudget", "Service", "Certificate", "ValidatingWebhookConfiguration")
	mustAccept(t, install{objects: objs, existing: map[string]map[string]string{
		"platform":    restricted,
		"kube-system": nil,
	}})
}
