package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestNetworkPolicyComponent checks the network-policy component: one
// NetworkPolicy selecting the webhook's pods that admits 9443 from the
// configured CIDR only and leaves the metrics and health ports open,
// nothing else changed; and the chart's networkPolicy values rendering the
// same objects.
func TestNetworkPolicyComponent(t *testing.T) {
	const cidr = "192.0.2.0/24" // the component's placeholder
	base, withComponent := renderBase(t), renderWithComponents(t, "network-policy")
	decodeAllStrict(t, withComponent)
	checkInstallation(t, withComponent, defaultName, defaultNamespace)

	key := objectKey{"NetworkPolicy", defaultNamespace, defaultName}
	wantKeys := append(baseKeys(), key)
	slices.SortFunc(wantKeys, func(a, b objectKey) int { return strings.Compare(a.String(), b.String()) })
	if got := withComponent.keys(); !slices.Equal(got, wantKeys) {
		t.Fatalf("%s renders\n  %v\nwant\n  %v", withComponent.source, got, wantKeys)
	}
	without := rendered{source: withComponent.source, objects: map[objectKey]renderedObject{}}
	for k, o := range withComponent.objects {
		if k != key {
			without.objects[k] = o
		}
	}
	assertSameObjects(t, base, without)

	np := decodeStrict[networkingv1.NetworkPolicy](t, withComponent.get(t, key.Kind, key.Namespace, key.Name))
	dep := decodeStrict[appsv1.Deployment](t, withComponent.get(t, "Deployment", defaultNamespace, defaultName))
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("podSelector %v does not select the webhook's pods (labels %v)", np.Spec.PodSelector, dep.Spec.Template.Labels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policyTypes %v, want Ingress only", np.Spec.PolicyTypes)
	}
	ports := map[int32][]networkingv1.NetworkPolicyPeer{}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.Int || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				t.Errorf("ingress port %+v: want a numbered TCP port", p)
				continue
			}
			ports[p.Port.IntVal] = append(ports[p.Port.IntVal], rule.From...)
		}
	}
	webhookPeers := ports[9443]
	if len(webhookPeers) != 1 || webhookPeers[0].IPBlock == nil || webhookPeers[0].IPBlock.CIDR != cidr ||
		webhookPeers[0].PodSelector != nil || webhookPeers[0].NamespaceSelector != nil {
		t.Errorf("port 9443 admits %+v, want only ipBlock %s", webhookPeers, cidr)
	}
	for _, p := range []int32{8080, 8081} {
		if peers, ok := ports[p]; !ok || len(peers) != 0 {
			t.Errorf("port %d: peers %+v, want it open (probes come from the kubelet)", p, peers)
		}
	}

	t.Run("chart with networkPolicy", func(t *testing.T) {
		assertSameObjects(t, withComponent, renderChart(t, "networkPolicy.enabled=true", "networkPolicy.webhookCIDRs[0]="+cidr), "Namespace")
	})
	t.Run("chart refuses networkPolicy without CIDRs", func(t *testing.T) {
		_, err := runRenderer(t, "helm", chartArgs(defaultName, defaultNamespace, "networkPolicy.enabled=true")...)
		if err == nil || !strings.Contains(err.Error(), "networkPolicy.webhookCIDRs is required") {
			t.Errorf("error %v, want one saying networkPolicy.webhookCIDRs is required", err)
		}
	})
}

// TestMemoryLimitReachesTheRuntime: the base and the chart pass the
// container's memory limit, in MiB, to --memory-limit-mib (which sets the Go
// runtime's soft limit to a share of it) through a resourceFieldRef, so the
// two cannot drift apart when the limit is changed.
func TestMemoryLimitReachesTheRuntime(t *testing.T) {
	for _, r := range []rendered{renderBase(t), renderChart(t), renderChart(t, "resources.limits.memory=256Mi")} {
		dep := decodeStrict[appsv1.Deployment](t, r.get(t, "Deployment", defaultNamespace, defaultName))
		c := dep.Spec.Template.Spec.Containers[0]
		if got, _ := argValue(c.Args, "memory-limit-mib"); got != "$(MEMORY_LIMIT_MIB)" {
			t.Errorf("%s: --memory-limit-mib=%q, want $(MEMORY_LIMIT_MIB)", r.source, got)
		}
		var ref *corev1.ResourceFieldSelector
		for _, e := range c.Env {
			if e.Name == "MEMORY_LIMIT_MIB" && e.ValueFrom != nil {
				ref = e.ValueFrom.ResourceFieldRef
			}
		}
		if ref == nil || ref.Resource != "limits.memory" || ref.ContainerName != c.Name || !ref.Divisor.Equal(resource.MustParse("1Mi")) {
			t.Errorf("%s: MEMORY_LIMIT_MIB from %+v, want resourceFieldRef limits.memory of container %s with divisor 1Mi", r.source, ref, c.Name)
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory limit: MEMORY_LIMIT_MIB would be the node's memory", r.source)
		}
	}
}
